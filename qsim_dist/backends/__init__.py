"""Backends by name. Heavy modules (JAX, numba) are imported only when their backend is asked for."""

from __future__ import annotations

from ..errors import BackendError

BACKENDS = ("statevector", "reference", "distributed")


def get_backend(name: str = "statevector", **options):
    """The backend called ``name``; a clear error for an unknown one."""
    if name == "reference":
        from .reference import ReferenceBackend

        return ReferenceBackend(**options)
    if name == "statevector":
        from .statevector import StatevectorBackend

        return StatevectorBackend(**options)
    if name == "distributed":
        from .distributed import DistributedBackend

        return DistributedBackend(**options)
    raise BackendError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
