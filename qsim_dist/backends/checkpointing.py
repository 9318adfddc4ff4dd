"""Checkpointing of a run (:mod:`qsim_dist.io.checkpoint`): the deterministic part applied in
chunks with a checkpoint written between them, a resumed run loaded, and the dense state's
checkpoint format (the default of :meth:`~qsim_dist.backends.state.State.write_checkpoint`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..circuit import Instruction
from ..errors import OptionError
from ..io.checkpoint import Checkpointing, Header, check_resumable, read_header

from .state import Capability

if TYPE_CHECKING:
    from .progress import Progress
    from .state import State


def apply_gates(state: "State", gates: Sequence[Instruction], bar: "Progress",
                checkpoints: "Checkpoints | None") -> None:
    """Apply a run of unconditioned gates: in one program, or in checkpointed chunks."""
    if checkpoints is None:
        program = state.prepare(gates)
        bar.add_total(state.program_size(program))
        state.execute(program, bar.update)
    else:
        checkpoints.apply(state, gates, bar)


class Checkpoints:
    """Checkpointing of one run (:mod:`qsim_dist.io.checkpoint`): reads the checkpoint to resume
    at construction, so that a refused one costs nothing; applies the deterministic part in
    chunks, writing a checkpoint after a chunk when the interval has passed."""

    def __init__(self, options: Checkpointing, header: Header):
        self.options = options
        self.header = header
        self.written = 0
        self.resumed = options.resume is not None
        if options.path is not None:
            from ..io.checkpoint import check_writable

            check_writable(options.path)
        if self.resumed:
            saved = read_header(options.resume)
            check_resumable(saved, options.resume, header.fingerprint, header.num_qubits,
                            header.precision, header.shots, None if header.seed < 0
                            else header.seed)
            self.header = dataclasses.replace(header, seed=saved.seed, position=saved.position,
                                              total=saved.total)
        self.resumed_at = self.header.position

    def apply(self, state: "State", gates: Sequence[Instruction], bar: "Progress") -> None:
        """Apply ``gates`` to ``state`` from the resumed position, in chunks of
        ``options.gates``, writing a checkpoint after a chunk when one is due."""
        if Capability.CHECKPOINT not in state.capabilities:
            raise OptionError(f"checkpoint: a {type(state).__name__} cannot be checkpointed")
        if self.resumed:
            state.load_checkpoint(Path(self.options.resume), self.header)
        start, step = self.header.position, self.options.gates
        chunks = [gates[i:i + step] for i in range(start, len(gates), step)]
        programs = [state.prepare(chunk) for chunk in chunks]
        bar.add_total(sum(state.program_size(p) for p in programs))
        last, position = time.monotonic(), start
        for chunk, program in zip(chunks, programs):
            state.execute(program, bar.update)
            position += len(chunk)
            due = self.options.path is not None and \
                time.monotonic() - last >= self.options.every
            if state.agree(due):
                self.header = dataclasses.replace(self.header, position=position,
                                                  total=len(gates))
                state.write_checkpoint(Path(self.options.path), self.header)
                self.written += 1
                last = time.monotonic()

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"checkpoints_written": self.written}
        if self.resumed:
            out["resumed_at_gate"] = self.resumed_at
        return out
