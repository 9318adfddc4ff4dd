"""``python -m qsim_dist.mpi_launch [script.py | -m module | qsim-dist arguments] ...``"""

from __future__ import annotations

import runpy
import sys

from .launcher import bind_local_gpu, run_main


def _main() -> int | None:
    args = sys.argv[1:]
    if not (args[:1] == ["-m"] or (args and args[0].endswith(".py"))):
        # qsim-dist arguments: the command line run by name like any module, since the launcher
        # sits below the command line in the layers and does not import it
        args = ["-m", "qsim_dist.cli", *args]
    if args[:1] == ["-m"] and len(args) > 1:
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    if args and args[0].endswith(".py"):
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
        return 0
    sys.stderr.write("usage: python -m qsim_dist.mpi_launch [script.py | -m module | qsim-dist "
                     "arguments] ...\n")  # `-m` without a module
    return 2


bind_local_gpu()  # before anything starts JAX
run_main(_main)
