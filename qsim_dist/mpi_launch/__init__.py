"""Launching qsim_dist under MPI: an entry point that ends every rank when one fails, the binding
of each rank to one GPU of its node, and Slurm/PBS job templates (``templates/``).

``python -m qsim_dist.mpi_launch ARGS`` runs the ``qsim-dist`` command line with ARGS;
``python -m qsim_dist.mpi_launch script.py ARGS`` runs a script and ``-m module ARGS`` a module,
all through :func:`run_main`.
"""

from .launcher import (JobRefused, agree, bind_local_gpu, local_rank, run_main, world_rank,
                       world_size)

__all__ = ["JobRefused", "agree", "bind_local_gpu", "local_rank", "run_main", "world_rank",
           "world_size"]
