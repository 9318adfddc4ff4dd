"""The Result of a run: counts, optional statevector, timings and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Result:
    """What a backend returns.

    ``counts`` maps bitstrings (clbit 0 rightmost, registers not separated) to counts;
    ``statevector`` is complex128 with qubit 0 the least significant index bit, or None.
    """

    num_qubits: int
    num_clbits: int
    shots: int
    seed: int
    precision: str
    backend: str
    counts: dict[str, int] = field(default_factory=dict)
    statevector: np.ndarray | None = None
    wall_time: float = 0.0
    compile_time: float = 0.0
    circuit_name: str = "circuit"
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no statevector)."""
        from .version import __version__

        return {
            "circuit": self.circuit_name,
            "num_qubits": self.num_qubits,
            "num_clbits": self.num_clbits,
            "shots": self.shots,
            "seed": self.seed,
            "precision": self.precision,
            "backend": self.backend,
            "version": __version__,
            "wall_time_s": round(self.wall_time, 6),
            "compile_time_s": round(self.compile_time, 6),
            "counts": dict(sorted(self.counts.items())),
            **self.metadata,
        }
