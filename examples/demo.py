"""The Python API in a few lines: build a circuit, run it, read expectation values and amplitudes.

Run with ``python examples/demo.py`` (``bash examples/demo.sh`` sets everything up and runs it).
"""

import numpy as np

from qsim_dist import Circuit
from qsim_dist.backends import get_backend


def ghz(n: int) -> Circuit:
    c = Circuit(n, name=f"ghz{n}")
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
    return c


def main() -> None:
    backend = get_backend("statevector")
    circuit = ghz(3)

    # expectation values of Pauli sums: dense ("ZZI", qubit 0 rightmost) or sparse ("X0 X1 X2")
    print("<Z0 Z1>     =", round(backend.expectation(circuit, "Z0 Z1"), 6))  # 1
    print("<XXX>       =", round(backend.expectation(circuit, "XXX"), 6))  # 1
    print("<Z0 + Z2>/2 =", round(backend.expectation(circuit, [(0.5, "Z0"), (0.5, "Z2")]), 6))  # 0

    # the statevector: qubit 0 is the least significant bit of the index (as Qiskit)
    psi = backend.statevector(circuit, precision="double")
    print("amplitudes  =", {format(i, "03b"): complex(np.round(a, 6))
                            for i, a in enumerate(psi) if abs(a) > 1e-9})

    # sampling: add measurements, run with a seed
    circuit.measure_all()
    result = backend.run(circuit, shots=1000, seed=1)
    print("counts      =", result.counts, f"({result.backend}, {result.precision}, "
          f"{result.wall_time * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
