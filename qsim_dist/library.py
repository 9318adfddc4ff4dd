"""Standard circuits, built deterministically: used by tests, benchmarks and examples.

Every function returns a :class:`~qsim_dist.circuit.Circuit`; none measures unless it says so.
Arguments are checked by :mod:`qsim_dist.validation`: a wrong one raises
:class:`~qsim_dist.errors.CircuitError` naming it and the values it allows.
"""

from __future__ import annotations

import math

import numpy as np

from . import validation as check
from .circuit import Circuit, Condition
from .errors import CircuitError


def _count(value, what: str, minimum: int = 0, maximum: int | None = None) -> int:
    return check.count(value, what, CircuitError, minimum=minimum, maximum=maximum)


def ghz(n: int, measure: bool = False) -> Circuit:
    """(|0...0> + |1...1>)/sqrt(2) on ``n`` qubits: H on qubit 0, then a CX chain.

    >>> c = ghz(3, measure=True)
    >>> c.name, c.num_qubits, c.num_clbits, c.num_gates
    ('ghz3', 3, 3, 3)
    """
    n = _count(n, "ghz: n", 1)
    c = Circuit(n, n if measure else 0, name=f"ghz{n}")
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
    if measure:
        for q in range(n):
            c.measure(q, q)
    return c


def qft(n: int, swaps: bool = True, inverse: bool = False) -> Circuit:
    """Textbook QFT on qubits 0..n-1 (qubit n-1 most significant): H and controlled phases."""
    n = _count(n, "qft: n")
    c = Circuit(n, name=f"qft{n}")
    ops: list[tuple] = []
    for j in reversed(range(n)):
        ops.append(("h", (j,), ()))
        for k in reversed(range(j)):
            ops.append(("cp", (k, j), (math.pi / 2 ** (j - k),)))
    if swaps:
        ops.extend(("swap", (q, n - 1 - q), ()) for q in range(n // 2))
    if inverse:
        ops = [(name, qs, tuple(-p for p in ps)) for name, qs, ps in reversed(ops)]
    for name, qs, ps in ops:
        c.add(name, *qs, params=ps)
    return c


_ONE_QUBIT = ("u3", "rx", "ry", "rz")


def random_circuit(n: int, depth: int, seed: int = 0, entangler: str = "cx") -> Circuit:
    """``depth`` layers of random one-qubit gates and a random matching of two-qubit gates.

    ``rng = numpy.random.default_rng(seed)``; each layer: ``kinds = rng.integers(0, 4, size=n)``
    picks ``("u3", "rx", "ry", "rz")[kinds[q]]`` for qubit q, its angles drawn in order by
    ``rng.uniform(0, 2*pi, size=k)`` (k = 3 for u3, else 1); then ``perm = rng.permutation(n)``
    and the two-qubit gate on ``(perm[2i], perm[2i+1])`` for i < n//2: ``cx`` or ``cz`` as
    ``entangler`` says, or for ``"mixed"`` one more draw ``rng.integers(0, 2)`` per pair.
    """
    n, depth = _count(n, "random_circuit: n", 1), _count(depth, "random_circuit: depth")
    seed = _count(seed, "random_circuit: seed")
    check.one_of(entangler, ("cx", "cz", "mixed"), "random_circuit: entangler", CircuitError)
    rng = np.random.default_rng(seed)
    c = Circuit(n, name=f"random_{n}_d{depth}_s{seed}")
    for _ in range(depth):
        kinds = rng.integers(0, len(_ONE_QUBIT), size=n)
        for q in range(n):
            name = _ONE_QUBIT[int(kinds[q])]
            k = 3 if name == "u3" else 1
            c.add(name, q, params=tuple(float(a) for a in rng.uniform(0.0, 2 * math.pi, size=k)))
        perm = rng.permutation(n)
        for i in range(n // 2):
            gate = entangler
            if entangler == "mixed":
                gate = ("cx", "cz")[int(rng.integers(0, 2))]
            c.add(gate, int(perm[2 * i]), int(perm[2 * i + 1]))
    return c


def random_gate_circuit(n: int, num_gates: int, seed: int = 0,
                        names: list[str] | None = None) -> Circuit:
    """``num_gates`` gates drawn uniformly from ``names`` (default: every table gate that fits on
    ``n`` qubits), each on random distinct qubits with parameters uniform in [-2 pi, 2 pi]."""
    from .gates import GATES

    n = _count(n, "random_gate_circuit: n", 1)
    num_gates = _count(num_gates, "random_gate_circuit: num_gates")
    seed = _count(seed, "random_gate_circuit: seed")
    if names is not None:
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise CircuitError(f"random_gate_circuit: names must be a list of gate names, got "
                               f"{check.describe(names)}")
        for g in names:
            if not isinstance(g, str) or g not in GATES or GATES[g].num_qubits > n:
                raise CircuitError(f"random_gate_circuit: names must be gates of the table on at "
                                   f"most {n} qubit(s), got {check.describe(g)}")
    rng = np.random.default_rng(seed)
    names = names or [g for g, spec in GATES.items() if spec.num_qubits <= n]
    c = Circuit(n, name=f"random_gates_{n}x{num_gates}")
    for _ in range(num_gates):
        spec = GATES[names[rng.integers(len(names))]]
        qs = rng.choice(n, spec.num_qubits, replace=False)
        c.add(spec.name, *qs, params=rng.uniform(-2 * np.pi, 2 * np.pi, spec.num_params))
    return c


def qpe(num_counting: int, phase: float) -> Circuit:
    """Phase estimation of P(2*pi*phase) on an eigenstate |1>; the counting register is qubits
    0..num_counting-1 and, for phase = j / 2^num_counting, ends in |j> exactly."""
    num_counting = _count(num_counting, "qpe: num_counting", 1)
    phase = check.finite(phase, "qpe: phase", CircuitError)
    n = num_counting + 1
    target = num_counting
    c = Circuit(n, name=f"qpe{num_counting}")
    c.add("x", target)
    for q in range(num_counting):
        c.add("h", q)
    for q in range(num_counting):
        c.add("cp", q, target, params=[2 * math.pi * phase * (1 << q)])
    for inst in qft(num_counting, swaps=True, inverse=True):
        c.append(inst)
    return c


def qaoa_maxcut(edges: list[tuple[int, int]], n: int, gammas, betas) -> Circuit:
    """QAOA for MaxCut on the graph ``edges`` over ``n`` qubits: one layer per (gamma, beta)."""
    n = _count(n, "qaoa_maxcut: n", 1)
    gammas, betas = (_reals(v, f"qaoa_maxcut: {w}") for v, w in ((gammas, "gammas"),
                                                                  (betas, "betas")))
    if len(gammas) != len(betas):
        raise CircuitError(f"qaoa_maxcut: gammas and betas must have one length, got "
                           f"{len(gammas)} and {len(betas)}")
    if isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__"):
        raise CircuitError(f"qaoa_maxcut: edges must be a list of qubit pairs, got "
                           f"{check.describe(edges)}")
    edges = [check.indices(e, n, "qaoa_maxcut: edge", CircuitError) for e in edges]
    if any(len(e) != 2 for e in edges):
        raise CircuitError("qaoa_maxcut: every edge must be a pair of distinct qubits")
    c = Circuit(n, name="qaoa")
    for q in range(n):
        c.add("h", q)
    for gamma, beta in zip(gammas, betas):
        for a, b in edges:
            c.add("rzz", a, b, params=[2 * gamma])
        for q in range(n):
            c.add("rx", q, params=[2 * beta])
    return c


def cuccaro_adder(bits: int, a: int, b: int) -> Circuit:
    """Ripple-carry adder (Cuccaro et al. 2004) computing b := a + b.

    Qubit layout: 0 = carry-in, then a_i at 1 + 2i and b_i at 2 + 2i, last qubit = carry-out.
    Inputs a and b (non-negative; their low ``bits`` bits) are prepared with X gates, so the
    output is one basis state.
    """
    bits, a, b = _adder_args("cuccaro_adder", bits, a, b)
    n = 2 * bits + 2
    c = Circuit(n, name=f"adder{bits}")
    qa = [1 + 2 * i for i in range(bits)]
    qb = [2 + 2 * i for i in range(bits)]
    cin, cout = 0, n - 1
    for i in range(bits):
        if (a >> i) & 1:
            c.add("x", qa[i])
        if (b >> i) & 1:
            c.add("x", qb[i])

    def maj(x, y, z):
        c.add("cx", z, y)
        c.add("cx", z, x)
        c.add("ccx", x, y, z)

    def uma(x, y, z):
        c.add("ccx", x, y, z)
        c.add("cx", z, x)
        c.add("cx", x, y)

    maj(cin, qb[0], qa[0])
    for i in range(1, bits):
        maj(qa[i - 1], qb[i], qa[i])
    c.add("cx", qa[-1], cout)
    for i in reversed(range(1, bits)):
        uma(qa[i - 1], qb[i], qa[i])
    uma(cin, qb[0], qa[0])
    return c


def _adder_args(where: str, bits, a, b) -> tuple[int, int, int]:
    # a and b: only their low `bits` bits are used (as they always were)
    return (_count(bits, f"{where}: bits", 1), _count(a, f"{where}: a"),
            _count(b, f"{where}: b"))


def _reals(values, what: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise CircuitError(f"{what} must be a list of finite real numbers, got "
                           f"{check.describe(values)}")
    return [check.finite(v, f"{what}[{j}]", CircuitError) for j, v in enumerate(values)]


def adder_output(bits: int, a: int, b: int) -> int:
    """Basis-state index that :func:`cuccaro_adder` ends in."""
    bits, a, b = _adder_args("adder_output", bits, a, b)
    s = a + b
    idx = 0
    for i in range(bits):
        idx |= ((a >> i) & 1) << (1 + 2 * i)
        idx |= ((s >> i) & 1) << (2 + 2 * i)
    idx |= ((s >> bits) & 1) << (2 * bits + 1)
    return idx


def grover(n: int, marked: int, iterations: int | None = None) -> Circuit:
    """Grover search for one marked basis state on n qubits (n >= 2), multi-controlled Z built
    from ccx ladders on ancillas: qubits 0..n-1 search, n..2n-3 ancillas (clean, returned to 0)."""
    n = _count(n, "grover: n", 2)
    marked = _count(marked, "grover: marked", 0, (1 << n) - 1)
    if iterations is None:
        iterations = int(math.floor(math.pi / 4 * math.sqrt(2 ** n)))
    iterations = _count(iterations, "grover: iterations")
    anc = list(range(n, n + max(n - 2, 0)))
    c = Circuit(n + len(anc), name=f"grover{n}")

    def mcz():  # Z on |1...1> of the search qubits
        if n == 2:
            c.add("cz", 0, 1)
            return
        chain = []
        c.add("ccx", 0, 1, anc[0])
        chain.append((0, 1, anc[0]))
        for i in range(2, n - 1):
            c.add("ccx", i, anc[i - 2], anc[i - 1])
            chain.append((i, anc[i - 2], anc[i - 1]))
        c.add("cz", anc[n - 3], n - 1)
        for x, y, z in reversed(chain):
            c.add("ccx", x, y, z)

    def flip_zeros(pattern):
        for q in range(n):
            if not (pattern >> q) & 1:
                c.add("x", q)

    for q in range(n):
        c.add("h", q)
    for _ in range(iterations):
        flip_zeros(marked)
        mcz()
        flip_zeros(marked)
        for q in range(n):
            c.add("h", q)
            c.add("x", q)
        mcz()
        for q in range(n):
            c.add("x", q)
            c.add("h", q)
    return c


def teleport_dynamic() -> Circuit:
    """Teleport ry(1.1)|0> from qubit 0 to qubit 2 with mid-circuit measurement and
    feed-forward; the final state of qubit 2 is ry(1.1)|0> whatever the outcomes."""
    c = Circuit(3, 3, name="teleport")
    c.add("ry", 0, params=[1.1])
    c.add("h", 1)
    c.add("cx", 1, 2)
    c.add("cx", 0, 1)
    c.add("h", 0)
    c.measure(0, 0)
    c.measure(1, 1)
    c.add("x", 2, condition=Condition((1,), 1))
    c.add("z", 2, condition=Condition((0,), 1))
    c.measure(2, 2)
    return c


def cat_entangler_chain(modules: int, data_qubits: int) -> Circuit:
    """Issue 4's distributed-program workload: ``modules`` QPU modules in a line, each with
    ``data_qubits`` data qubits and 2 communication qubits, joined by cat-entangler remote CNOTs.

    Module m holds qubits ``m*(d+2) .. m*(d+2)+d-1`` (data), ``m*(d+2)+d`` (link to the left) and
    ``m*(d+2)+d+1`` (link to the right). Each module runs a GHZ-like CNOT chain on its data; then
    for each pair of consecutive modules, a remote CNOT from the last data qubit of module m to the
    first of module m+1: reset both link qubits, H + CNOT make an EPR pair (see
    :func:`cat_entangler_epr_pairs`: where the link noise goes), CNOT data->link, measure,
    conditional X on the far link qubit, CNOT link->data, H, measure, conditional Z on the control.
    Finally RX(0.3*(i+1)) on data qubit i (i counted over all modules) and every data qubit
    measured. Clbits: ``2*(modules-1)`` link outcomes first, then one per data qubit in order.
    """
    modules = _count(modules, "cat_entangler_chain: modules", 1)
    d = data_qubits = _count(data_qubits, "cat_entangler_chain: data_qubits", 1)
    width = d + 2
    links = modules - 1
    c = Circuit(modules * width, 2 * links + modules * d,
                name=f"cat_entangler_k{modules}_d{d}")
    data = [m * width + j for m in range(modules) for j in range(d)]
    for m in range(modules):
        c.add("h", m * width)
        for j in range(d - 1):
            c.add("cx", m * width + j, m * width + j + 1)
    for m, (near, far) in enumerate(cat_entangler_epr_pairs(modules, d)):
        control, target = m * width + d - 1, (m + 1) * width
        c.add("reset", near)
        c.add("reset", far)
        c.add("h", near)
        c.add("cx", near, far)
        c.add("cx", control, near)
        c.measure(near, 2 * m)
        c.add("x", far, condition=Condition((2 * m,), 1))
        c.add("cx", far, target)
        c.add("h", far)
        c.measure(far, 2 * m + 1)
        c.add("z", control, condition=Condition((2 * m + 1,), 1))
    for i, q in enumerate(data):
        c.add("rx", q, params=[0.3 * (i + 1)])
    for i, q in enumerate(data):
        c.measure(q, 2 * links + i)
    return c


def cat_entangler_epr_pairs(modules: int, data_qubits: int) -> list[tuple[int, int]]:
    """The (near, far) link qubits of each EPR pair of :func:`cat_entangler_chain`: the EPR-making
    ``cx(near, far)`` is the only gate on that pair, so a noise rule on ``("cx", (near, far))``
    models the link noise."""
    modules = _count(modules, "cat_entangler_epr_pairs: modules", 1)
    data_qubits = _count(data_qubits, "cat_entangler_epr_pairs: data_qubits", 1)
    width = data_qubits + 2
    return [(m * width + data_qubits + 1, (m + 1) * width + data_qubits)
            for m in range(modules - 1)]
