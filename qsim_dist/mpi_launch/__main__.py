"""``python -m qsim_dist.mpi_launch [script.py | -m module | qsim-dist arguments] ...``"""

from __future__ import annotations

import runpy
import sys

from .launcher import bind_local_gpu, run_main


def _main() -> int | None:
    args = sys.argv[1:]
    if args[:1] == ["-m"] and len(args) > 1:
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    if args and args[0].endswith(".py"):
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
        return 0
    from qsim_dist.cli import main

    return main(args)


bind_local_gpu()  # before anything starts JAX
run_main(_main)
