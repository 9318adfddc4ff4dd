"""``python -m qsim_dist.cli ARGS``: the ``qsim-dist`` command line."""

import sys

from . import main

sys.exit(main())
