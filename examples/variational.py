"""Variational algorithms optimised end to end with JAX gradients and SciPy: a VQE of the H2
Hamiltonian in examples/h2.paulis, and a QAOA for MaxCut on a 4-node graph — each then
optimised again *on* the two-module network examples/network_pair.toml (the distribution
compiler places it; its links and nodes are noisy), with optax's Adam on parameter-shift
gradients of the network run, to show what distribution costs at the optimum.

    python examples/variational.py
    python examples/variational.py --shots 4000 --layers 2

VQE: a hardware-efficient ansatz (ry on each qubit, cx, ry on each qubit), minimised by L-BFGS-B
on jax.value_and_grad of qsim_dist.autodiff.expectation_fn; printed beside the exact ground
energy (numpy's eigvalsh of the same Hamiltonian). QAOA: library.qaoa_maxcut, the expected cut
maximised the same way, printed beside the maximum cut (brute force); then the measured circuit
distributed over modules A and B (2 data qubits each) and run with noisy links and nodes, its
expected cut from the counts, and the fidelity of the network run against the ideal one.
On the network: qsim_dist.gradients.parameter_shift(network=...) gives the gradient of the
energy as the network runs it (``--network-shots`` trajectories per evaluation), Adam takes
``--steps`` steps from the one-QPU optimum, and both points are then evaluated on the network
with ``--shots`` trajectories (run_program(observables=...)).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import jax  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from qsim_dist import Circuit  # noqa: E402
from qsim_dist import library as lib  # noqa: E402
from qsim_dist.autodiff import expectation_fn  # noqa: E402

EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]


def read_paulis(path: Path) -> list[tuple[float, str]]:
    terms = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            coeff, label = line.split()
            terms.append((float(coeff), label))
    return terms


def exact_ground(terms: list[tuple[float, str]]) -> float:
    mats = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
            "Z": np.diag([1.0, -1.0])}
    h = sum(c * np.kron(mats[label[0]], mats[label[1]]) for c, label in terms)
    return float(np.linalg.eigvalsh(h)[0])


def vqe_circuit(theta) -> Circuit:
    c = Circuit(2)
    c.add("ry", 0, params=[float(theta[0])])
    c.add("ry", 1, params=[float(theta[1])])
    c.add("cx", 0, 1)
    c.add("ry", 0, params=[float(theta[2])])
    c.add("ry", 1, params=[float(theta[3])])
    return c


def optimise(f, x0):
    """L-BFGS-B on JAX's value and gradient of ``f``."""
    value_and_grad = jax.jit(jax.value_and_grad(f))

    def fun(x):
        v, g = value_and_grad(x)
        return float(v), np.asarray(g, dtype=np.float64)

    return minimize(fun, x0, jac=True, method="L-BFGS-B")


def cut_of(bits: str) -> int:
    # counts keys: clbit 0 rightmost
    return sum(bits[-1 - a] != bits[-1 - b] for a, b in EDGES)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shots", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6, help="Adam steps on the network")
    ap.add_argument("--network-shots", type=int, default=100,
                    help="trajectories per evaluation of a network gradient")
    args = ap.parse_args(argv)
    with jax.enable_x64(True):   # double precision here only, not for the whole process
        return _run(args)


def _run(args) -> dict:
    out = {}

    # -- VQE -------------------------------------------------------------------------------
    terms = read_paulis(HERE / "h2.paulis")
    template = vqe_circuit(np.zeros(4))
    energy = expectation_fn(template, terms)
    res = optimise(energy, np.array([0.1, -0.2, 0.3, 0.05]))
    exact = exact_ground(terms)
    out["vqe"] = (float(res.fun), exact)
    print(f"VQE  H2 (2 qubits): energy {res.fun:.8f} Ha, exact ground {exact:.8f} Ha, "
          f"|error| < 1e-8: {abs(res.fun - exact) < 1e-8}")

    # -- QAOA on one QPU ---------------------------------------------------------------------
    p = args.layers
    qaoa = lib.qaoa_maxcut(EDGES, 4, [0.1] * p, [0.1] * p)
    zz = expectation_fn(qaoa, [(1.0, f"Z{a} Z{b}") for a, b in EDGES])
    # parameters of qaoa_maxcut in instruction order: per layer, one rzz per edge (2 gamma),
    # then one rx per qubit (2 beta); tie them to the angles of each layer
    def expand(angles):
        parts = []
        for layer in range(p):
            parts += [2 * angles[2 * layer]] * len(EDGES) + [2 * angles[2 * layer + 1]] * 4
        return jax.numpy.stack(parts)

    res = optimise(lambda a: zz(expand(a)), np.array([0.4, 0.3] * p))
    expected_cut = (len(EDGES) - float(res.fun)) / 2
    best = max(cut_of("".join(b)) for b in itertools.product("01", repeat=4))
    out["qaoa"] = (expected_cut, best)
    print(f"QAOA MaxCut (4 nodes, {len(EDGES)} edges, p={p}): expected cut {expected_cut:.4f} "
          f"of {best}")

    # -- the optimum on a two-module network --------------------------------------------------
    from qsim_dist.dqc import run_program
    from qsim_dist.network import load_network
    from qsim_dist.network.distribute import distribute

    gammas, betas = list(res.x[0::2]), list(res.x[1::2])
    measured = lib.qaoa_maxcut(EDGES, 4, gammas, betas)
    final = Circuit(4, 4, list(measured.instructions))
    for q in range(4):
        final.measure(q, q)
    net = load_network(HERE / "network_pair.toml")
    program = distribute(final, net)
    report = run_program(program, net, shots=args.shots, seed=args.seed)
    ideal = run_program(program, net, shots=args.shots, seed=args.seed, ideal=True)
    cut_net = sum(cut_of(k) * n for k, n in report.counts.items()) / args.shots
    cut_ideal = sum(cut_of(k) * n for k, n in ideal.counts.items()) / args.shots
    out["network"] = (cut_net, cut_ideal, report.fidelity, report.fidelity_stderr,
                      report.epr_pairs)
    print(f"     on network_pair.toml ({report.epr_pairs:.0f} EPR pairs per shot): expected cut "
          f"{cut_net:.4f} (ideal links and nodes: {cut_ideal:.4f}), fidelity "
          f"{report.fidelity:.4f} +- {report.fidelity_stderr:.4f}")

    # -- optimised on the network itself ---------------------------------------------------
    vqe_placement = ["A", "B"]   # one qubit per module: the cx crosses the link
    x_vqe = optimise(energy, np.array([0.1, -0.2, 0.3, 0.05])).x
    def qaoa_at(angles):
        return _gates_only(lib.qaoa_maxcut(EDGES, 4, list(angles[0::2]), list(angles[1::2])))

    for name, build, h, x0, to_params, chain, placement in (
            ("VQE ", vqe_circuit, terms, x_vqe, lambda a: a, lambda g: g, vqe_placement),
            ("QAOA", qaoa_at, [(1.0, f"Z{a} Z{b}") for a, b in EDGES], res.x,
             lambda a: np.asarray(expand(a)), lambda g: _tied(g, p, len(EDGES)), None)):
        start, best_x = on_network(build, h, net, x0, to_params, chain, placement, args)
        if name == "QAOA":   # report the cut: (edges - <sum ZZ>) / 2
            start, best_x = [((len(EDGES) - v) / 2, e / 2) for v, e in (start, best_x)]
        what = "expected cut" if name == "QAOA" else "energy"
        out[f"network_{name.strip().lower()}"] = (start[0], best_x[0])
        print(f"{name} optimised on network_pair.toml ({args.steps} Adam steps, "
              f"{args.network_shots} trajectories per evaluation): {what} {best_x[0]:.4f} +- "
              f"{best_x[1]:.4f}; at the one-QPU optimum {start[0]:.4f} +- {start[1]:.4f}")
    return out


def _gates_only(circuit: Circuit) -> Circuit:
    return Circuit(circuit.num_qubits, 0, [i for i in circuit if i.name != "measure"])


def _tied(grad, layers, edges):
    """The gradient in the QAOA angles (gamma, beta per layer) from that in the gate
    parameters (2 gamma on each rzz, 2 beta on each rx)."""
    out, k = [], 0
    for _ in range(layers):
        out.append(2 * np.sum(grad[k:k + edges]))
        k += edges
        out.append(2 * np.sum(grad[k:k + 4]))
        k += 4
    return np.array(out)


def on_network(build, h, net, x0, to_params, chain, placement, args):
    """Adam (optax) on the network run's parameter-shift gradient from ``x0`` (``build(x)``:
    the circuit at angles x, ``to_params(x)``: its gate parameters, ``chain``: the gradient
    in x from the gradient in those); returns (value, stderr) of the energy on the network at
    ``x0`` and at the end."""
    import optax

    from qsim_dist.dqc import run_program
    from qsim_dist.gradients import parameter_shift
    from qsim_dist.network.distribute import distribute

    circuit = build(x0)
    if placement is None:
        placement = distribute(circuit, net).placement
    opt = optax.adam(0.05)
    x = np.array(x0, dtype=np.float64)
    state = opt.init(x)
    for step in range(args.steps):
        _, g = parameter_shift(circuit, h, to_params(x), network=net, placement=placement,
                               shots=args.network_shots, seed=args.seed + step)
        updates, state = opt.update(chain(g), state)
        x = np.asarray(optax.apply_updates(x, updates))

    def value(angles):
        program = distribute(build(angles), net, placement=placement)
        report = run_program(program, net, shots=args.shots, seed=args.seed, observables=[h])
        return report.expectations[0], report.expectations_stderr[0]
    return value(np.array(x0, dtype=np.float64)), value(x)


if __name__ == "__main__":
    main()
