"""The registry of backends: every backend by name, what the command lines and ``qsim-dist info``
know of it, and :func:`get_backend`.

:data:`BACKENDS` is the one list of backends: ``qsim-dist run`` and ``qsim-dist dqc`` take their
``--backend`` choices and help from it and ``qsim-dist info`` lists it. Adding a backend is one
entry here (and its module). A backend's module is imported only when the backend is asked for,
so heavy dependencies (JAX, numba, MPI) load only then.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import BackendError

__all__ = ["BACKENDS", "BackendInfo", "DEFAULT_BACKEND", "DEFAULT_MPI_BACKEND", "get_backend"]


@dataclass(frozen=True)
class BackendInfo:
    """What is known of a backend without importing it.

    ``module`` and ``cls`` name its class (``qsim_dist.backends.<module>.<cls>``);
    ``description`` is one line for ``--help``; ``sharded``: it holds one shard of the state per
    MPI rank, the only kind of backend that runs under ``mpiexec -n P`` with P > 1;
    ``precisions``: the precisions it takes, its default first; ``modules``: it takes the
    module (network node) of every qubit, ``modules=...`` (``qsim_dist.dqc`` passes the node of
    each physical qubit of a lowered program); ``sliced``: under ``mpiexec -n P`` the slices of
    its contractions are shared out among the ranks, every rank getting the whole answer.
    """

    module: str
    cls: str
    description: str
    sharded: bool
    precisions: tuple[str, ...]
    modules: bool = False
    sliced: bool = False

    @property
    def default_precision(self) -> str:
        """The precision of a run that names none."""
        return self.precisions[0]


BACKENDS: dict[str, BackendInfo] = {
    "statevector": BackendInfo(
        "statevector", "StatevectorBackend",
        "one process, fused gates on the compiled CPU or JAX kernels (fast)",
        sharded=False, precisions=("single", "double")),
    "reference": BackendInfo(
        "reference", "ReferenceBackend", "dense numpy, short and obviously correct (slow)",
        sharded=False, precisions=("double", "single")),
    "distributed": BackendInfo(
        "distributed", "DistributedBackend", "the state sharded over the MPI ranks",
        sharded=True, precisions=("single", "double")),
    "modulenet": BackendInfo(
        "modulenet", "ModuleNetBackend",
        "one tensor per QPU module, entanglement as bonds (large networks, little entanglement)",
        sharded=False, precisions=("double", "single"), modules=True),
    "tensor": BackendInfo(
        "tensor", "TensorBackend",
        "a tensor network contracted on request (wide, shallow circuits: amplitudes, "
        "marginals, expectations, exact samples; slices shared among MPI ranks)",
        sharded=False, precisions=("double", "single"), sliced=True),
}

DEFAULT_BACKEND = "statevector"   # in one process
DEFAULT_MPI_BACKEND = "distributed"   # under mpiexec with more than one rank


def get_backend(name: str = DEFAULT_BACKEND, **options):
    """A new instance of the backend called ``name`` (a key of :data:`BACKENDS`), built with
    ``options``; a :class:`~qsim_dist.errors.BackendError` for an unknown name."""
    info = BACKENDS.get(name) if isinstance(name, str) else None
    if info is None:
        raise BackendError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    module = importlib.import_module(f"{__name__}.{info.module}")
    return getattr(module, info.cls)(**options)
