"""Qiskit's V2 primitives on the distributed statevector, at any world size (``mpiexec -n 1``,
``-n 2``, ``-n 4`` and plain pytest): every rank gets the reference primitives' values and one
seed gives the same counts on every rank and at every rank count."""

from __future__ import annotations

import numpy as np
import pytest

qiskit = pytest.importorskip("qiskit")

from qiskit import QuantumCircuit, transpile  # noqa: E402
from qiskit.circuit.library import efficient_su2  # noqa: E402
from qiskit.primitives import StatevectorEstimator  # noqa: E402

from qsim_dist.qiskit_primitives import Estimator, Sampler  # noqa: E402


def _ansatz(n=5):
    return transpile(efficient_su2(n, reps=2), basis_gates=["rx", "ry", "rz", "cx"],
                     optimization_level=0)


def test_estimator_on_the_distributed_statevector_gives_qiskits_values():
    qc = _ansatz()
    values = np.random.default_rng(2).uniform(-1, 1, size=(2, qc.num_parameters))
    pub = (qc, [["ZZIII"], ["IXXIY"]], values)
    want = StatevectorEstimator().run([pub]).result()[0].data.evs
    got = Estimator("distributed").run([pub]).result()[0].data.evs
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_sampler_on_the_distributed_statevector_is_seeded_as_on_one_process():
    qc = QuantumCircuit(5)
    qc.h(0)
    for q in range(4):
        qc.cx(q, q + 1)
    qc.ry(0.4, 2)
    qc.measure_all()
    got = Sampler("distributed", seed=11).run([qc], shots=500).result()[0].data.meas
    want = Sampler("statevector", seed=11).run([qc], shots=500).result()[0].data.meas
    assert got.get_counts() == want.get_counts()
