"""``value_and_grad`` of a hardware-efficient ansatz energy: qsim_dist against PennyLane
(``lightning.qubit`` adjoint, ``default.qubit`` with JAX backprop) and TensorCircuit-NG (JAX
backend), one run, same machine, double precision.

    python benchmarks/gradients.py                          # 20 qubits, 200 parameters
    python benchmarks/gradients.py --qubits 12 --layers 4   # a quick check
    python benchmarks/gradients.py --sims all               # qsim_dist's other paths too

The ansatz: ``--layers`` layers of ry and rz on every qubit, then a cx ladder (2 x qubits
parameters per layer; 20 qubits x 5 layers = 200); the energy: sum_i Z_i Z_{i+1} + 0.5 sum_i X_i.
qsim_dist's entries: ``qsim_dist-jax`` is ``jax.jit(jax.value_and_grad(expectation_fn(...)))``
as a user writes it (the adjoint method on the compiled CPU kernels); ``qsim_dist-jax-xla`` the
same on the JAX kernels (what a GPU runs); ``qsim_dist-backprop`` JAX differentiating the JAX
kernels (``gradient="backprop"``); ``qsim_dist-pennylane-adjoint`` the PennyLane device
``qsim_dist.qubit`` with ``diff_method="adjoint"``; ``qsim_dist-shift`` parameter shift on the
compiled kernels. Each simulator is timed on its second call (the first compiles), median of
``--repeat``; its gradient is compared with qsim_dist's JAX gradient, and that one with central
finite differences of the energy (step 1e-5) on 5 parameters. Each simulator runs in its own
child process (``--timeout``) with ``OMP_NUM_THREADS`` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIMS = ("qsim_dist-jax", "pennylane-lightning-adjoint", "pennylane-default-jax",
        "tensorcircuit-jax", "qsim_dist-jax-xla", "qsim_dist-backprop",
        "qsim_dist-pennylane-adjoint", "qsim_dist-shift")


def hamiltonian(n):
    return [(1.0, f"Z{i} Z{i + 1}") for i in range(n - 1)] + [(0.5, f"X{i}") for i in range(n)]


def weights(n, layers):
    return np.random.default_rng(1).uniform(0, 2 * np.pi, size=(layers, n, 2))


def ansatz(n, layers):
    """The ansatz in qsim_dist's IR, its parameters zero (they are the function's argument)."""
    from qsim_dist import Circuit

    c = Circuit(n)
    for _ in range(layers):
        for q in range(n):
            c.add("ry", q, params=[0.0])
            c.add("rz", q, params=[0.0])
        for q in range(n - 1):
            c.add("cx", q, q + 1)
    return c


def run_qsim_jax(n, layers, repeat, **options):
    import jax

    from qsim_dist.autodiff import expectation_fn

    jax.config.update("jax_enable_x64", True)
    c = ansatz(n, layers)
    f = jax.jit(jax.value_and_grad(expectation_fn(c, hamiltonian(n), **options)))
    w = weights(n, layers).reshape(-1)
    return f, w, lambda out: (float(out[0]), np.asarray(out[1]))


def run_qsim_shift(n, layers, repeat):
    from qsim_dist.gradients import parameter_shift

    c = ansatz(n, layers)
    w = weights(n, layers).reshape(-1)
    return (lambda x: parameter_shift(c, hamiltonian(n), x)), w, \
        lambda out: (float(out[0]), np.asarray(out[1]))


def _pennylane(n, layers, device, diff, interface):
    import pennylane as qml

    dev = qml.device(device, wires=n)
    obs = qml.sum(*[qml.PauliZ(i) @ qml.PauliZ(i + 1) for i in range(n - 1)],
                  *[0.5 * qml.PauliX(i) for i in range(n)])

    @qml.qnode(dev, diff_method=diff, interface=interface)
    def energy(w):
        for layer in range(layers):
            for q in range(n):
                qml.RY(w[layer, q, 0], wires=q)
                qml.RZ(w[layer, q, 1], wires=q)
            for q in range(n - 1):
                qml.CNOT(wires=[q, q + 1])
        return qml.expval(obs)
    return energy


def run_pl_lightning(n, layers, repeat):
    import pennylane as qml
    from pennylane import numpy as pnp

    energy = _pennylane(n, layers, "lightning.qubit", "adjoint", "autograd")
    w = pnp.array(weights(n, layers), requires_grad=True)

    def f(x):
        g = qml.grad(energy)(x)
        return energy(x), g   # PennyLane's grad does not return the value: one more run
    return f, w, lambda out: (float(out[0]), np.asarray(out[1]).reshape(-1))


def run_pl_qsim_adjoint(n, layers, repeat):
    import pennylane as qml
    from pennylane import numpy as pnp

    energy = _pennylane(n, layers, "qsim_dist.qubit", "adjoint", "autograd")
    w = pnp.array(weights(n, layers), requires_grad=True)

    def f(x):
        g = qml.grad(energy)(x)
        return energy(x), g   # as lightning's: PennyLane's grad does not return the value
    return f, w, lambda out: (float(out[0]), np.asarray(out[1]).reshape(-1))


def run_pl_default_jax(n, layers, repeat):
    import jax

    jax.config.update("jax_enable_x64", True)
    energy = _pennylane(n, layers, "default.qubit", "backprop", "jax")
    f = jax.jit(jax.value_and_grad(energy))
    return f, jax.numpy.asarray(weights(n, layers)), \
        lambda out: (float(out[0]), np.asarray(out[1]).reshape(-1))


def run_tc_jax(n, layers, repeat):
    import jax
    import tensorcircuit as tc

    K = tc.set_backend("jax")
    tc.set_dtype("complex128")

    def energy(w):
        c = tc.Circuit(n)
        for layer in range(layers):
            for q in range(n):
                c.ry(q, theta=w[layer, q, 0])
                c.rz(q, theta=w[layer, q, 1])
            for q in range(n - 1):
                c.cnot(q, q + 1)
        e = sum(c.expectation_ps(z=[i, i + 1]) for i in range(n - 1))
        e += sum(0.5 * c.expectation_ps(x=[i]) for i in range(n))
        return K.real(e)
    f = K.jit(K.value_and_grad(energy))
    return f, jax.numpy.asarray(weights(n, layers)), \
        lambda out: (float(out[0]), np.asarray(out[1]).reshape(-1))


RUNNERS = {"qsim_dist-jax": run_qsim_jax, "qsim_dist-shift": run_qsim_shift,
           "qsim_dist-jax-xla": lambda *a: run_qsim_jax(*a, kernels="jax"),
           "qsim_dist-backprop": lambda *a: run_qsim_jax(*a, gradient="backprop"),
           "qsim_dist-pennylane-adjoint": run_pl_qsim_adjoint,
           "pennylane-lightning-adjoint": run_pl_lightning,
           "pennylane-default-jax": run_pl_default_jax, "tensorcircuit-jax": run_tc_jax}


def child(sim, n, layers, repeat):
    f, w, read = RUNNERS[sim](n, layers, repeat)
    t0 = time.perf_counter()
    out = read(f(w))   # the first call compiles
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = read(f(w))
        times.append(time.perf_counter() - t0)
    extra = {}
    if sim == "qsim_dist-jax":   # the gradient against central finite differences
        import jax

        value = lambda x: float(f(x)[0])  # noqa: E731
        fd = []
        for k in range(5):
            e = np.zeros_like(w)
            e[k] = 1e-5
            fd.append((value(w + e) - value(w - e)) / 2e-5)
        extra["fd_error"] = float(np.max(np.abs(np.array(fd) - out[1][:5])))
    print("RESULT " + json.dumps({"time": float(np.median(times)), "first": first,
                                  "value": out[0], "grad": out[1].tolist(), **extra}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qubits", type=int, default=20)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sims", nargs="+", choices=SIMS + ("all",), default=list(SIMS[:4]))
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.qubits, args.layers, args.repeat)
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    results = {}
    for sim in (SIMS if "all" in args.sims else args.sims):
        cmd = [args.python, __file__, "--child", sim, "--qubits", str(args.qubits), "--layers",
               str(args.layers), "--repeat", str(args.repeat)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            results[sim] = json.loads(lines[-1][7:]) if lines else \
                {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:120]}
        except subprocess.TimeoutExpired:
            results[sim] = {"error": f"over {args.timeout:.0f} s"}
    ours = results.get("qsim_dist-jax", {})
    print(f"value_and_grad, {args.qubits} qubits, {2 * args.qubits * args.layers} parameters, "
          f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, median of {args.repeat} (after a first, "
          f"compiling call)")
    print("| simulator | time s | first call s | max |grad - qsim_dist| | qsim_dist / it |")
    print("|---|---|---|---|---|")
    for sim, r in results.items():
        if "error" in r:
            print(f"| {sim} | {r['error']} | | | |")
            continue
        diff = float(np.max(np.abs(np.array(r["grad"]) - np.array(ours["grad"])))) \
            if "grad" in ours else float("nan")
        ratio = f"{ours['time'] / r['time']:.2f}" if "time" in ours and sim != \
            "qsim_dist-jax" else ""
        print(f"| {sim} | {r['time']:.3f} | {r['first']:.2f} | {diff:.1e} | {ratio} |")
    if "fd_error" in ours:
        print(f"qsim_dist-jax gradient against central finite differences (5 parameters): "
              f"max error {ours['fd_error']:.1e}")


if __name__ == "__main__":
    main()
