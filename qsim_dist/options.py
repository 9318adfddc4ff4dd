"""The parameters of one run, resolved and checked once: shots, seed, precision.

Every entry point (``Backend.run``, ``DistributedBackend.run``, the command lines) turns what a
user gave into a :class:`RunOptions` through :meth:`RunOptions.resolve`, so that a wrong value
gives the same one-line :class:`~qsim_dist.errors.OptionError` everywhere and the entropy of an
unseeded run is drawn in one place (once, and on rank 0 only under MPI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import validation as check
from .errors import OptionError

__all__ = ["RunOptions", "PRECISIONS", "MAX_SHOTS", "MAX_SEED", "check_precision", "fresh_seed"]

PRECISIONS = ("single", "double")
MAX_SHOTS = (1 << 63) - 1  # shots are counted in int64 (results files too)
MAX_SEED = (1 << 63) - 1  # a seed drawn from entropy, or given on a command line, fits an int64


def check_precision(precision: str | None, default: str) -> str:
    """``precision`` (``default`` when None) if it is one of :data:`PRECISIONS`."""
    precision = precision or default
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision '{precision}' (choose single or double)")
    return precision


def fresh_seed(comm: Any = None) -> int:
    """A seed from fresh entropy; with ``comm`` (a :class:`qsim_dist.comm.Comm`), rank 0's for
    every rank (a collective call)."""
    seed = int(np.random.SeedSequence().entropy % (1 << 63))
    return comm.bcast(seed) if comm is not None else seed


def int_seed(seq: np.random.SeedSequence) -> int:
    """A non-negative 63-bit integer seed drawn from ``seq``."""
    return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class RunOptions:
    """The checked parameters of one run.

    ``seed`` is None only when a resumed checkpoint is to supply it (see ``resume`` of
    :meth:`resolve`); ``precision`` is ``"single"`` or ``"double"``.
    """

    shots: int
    seed: int | None
    precision: str

    @classmethod
    def resolve(cls, shots: Any = 1024, seed: Any = None, precision: str | None = None, *,
                default_precision: str = "single", comm: Any = None,
                resume: bool = False) -> "RunOptions":
        """Check ``precision`` (None: ``default_precision``), ``shots`` (an integer in
        ``[0, MAX_SHOTS]``) and ``seed`` (a non-negative integer or None), in this order, and
        draw the seed from fresh entropy when it is None, unless ``resume`` (a resumed
        checkpoint holds the seed). With ``comm`` (several MPI ranks), rank 0 draws and every
        rank gets its seed: call it on every rank."""
        precision = check_precision(precision, default_precision)
        shots = check.count(shots, "shots", maximum=MAX_SHOTS)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise OptionError(f"seed must be a non-negative integer, got {seed!r}")
        if seed is None and not resume:
            seed = fresh_seed(comm)
        return cls(shots=shots, seed=seed, precision=precision)

    def int64_seed(self) -> int:
        """The seed as an int64 (at most :data:`MAX_SEED`, not a bool), where a run derives
        other seeds from it (the blocks of a split-shot run)."""
        return check.count(self.seed, "seed", maximum=MAX_SEED)
