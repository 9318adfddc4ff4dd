"""Ready-made network workloads, as node programs on a generated network: the repeater chain,
GHZ states over many modules, for tests, benchmarks (``benchmarks/network_scale.py``) and
examples. Each builder returns ``(network, programs)`` for :func:`qsim_dist.dqc.run_nodes`.
"""

from __future__ import annotations

from typing import Callable

from .gate_protocols import purify
from .nodes import (NodeView, cat_disentangle_recv, cat_disentangle_send, cat_entangle_recv,
                    cat_entangle_send, swap_at, swap_correct, teleport_recv, teleport_send)
from .topology import Network, network_from_dict


def _chain_names(repeaters: int) -> list[str]:
    return ["A", *[f"R{i}" for i in range(1, repeaters + 1)], "B"]

__all__ = ["TELEPORT_ANGLES", "ghz_modules", "purified_chain", "repeater_chain"]

#: The u3 angles of the state the chain teleports (any state would do; this one is generic).
TELEPORT_ANGLES = (1.1, 0.4, -0.7)


def repeater_chain(repeaters: int, fidelity: float = 1.0, *, t2: float | None = None,
                   latency: float = 5e-6, attempt_time: float = 1e-6,
                   success_probability: float = 1.0
                   ) -> tuple[Network, dict[str, Callable]]:
    """Teleportation over A - R1 - ... - Rk - B: every link makes a Werner pair of
    ``fidelity``, every repeater swaps and sends its two bits to B, B corrects and tells A,
    and A teleports a qubit in ``u3(TELEPORT_ANGLES)|0>`` to B over the end-to-end pair. The
    output is B's qubit; its ideal fidelity is ``(2F'+1)/3`` with F' the chain's swapped
    fidelity (:func:`qsim_dist.network.physics.chain_fidelity`)."""
    names = _chain_names(repeaters)
    decay = {"t2": t2} if t2 is not None else {}
    link = {"fidelity": fidelity, "latency": latency, "attempt_time": attempt_time,
            "success_probability": success_probability}
    net = network_from_dict({
        "nodes": {"A": {"data_qubits": 1, **decay}, "B": {"data_qubits": 1, **decay},
                  **{r: {"repeater": True, "comm_qubits": 2, **decay} for r in names[1:-1]}},
        "links": [{"between": [x, y], **link} for x, y in zip(names, names[1:])]},
        name=f"chain{repeaters}")

    def a(node: NodeView):
        q = node.qubit()
        node.gate("u3", q, params=TELEPORT_ANGLES)
        half = yield node.epr(names[1])
        yield node.recv("B")                       # B: the end-to-end pair is ready
        yield from teleport_send(node, q, "B", pair=half)

    def repeater(i: int):
        def program(node: NodeView):
            yield from swap_at(node, names[i - 1], names[i + 1], to="B")
        return program

    def b(node: NodeView):
        half = yield node.epr(names[-2])
        yield from swap_correct(node, half, names[1:-1])
        yield node.send("A")
        return (yield from teleport_recv(node, "A", pair=half))

    programs = {"A": a, **{r: repeater(i) for i, r in enumerate(names[1:-1], 1)}, "B": b}
    return net, programs


def ghz_modules(modules: int, topology: str = "line", fidelity: float = 1.0, *,
                latency: float = 5e-6, measure: bool = False
                ) -> tuple[Network, dict[str, Callable]]:
    """A GHZ state over ``modules`` modules, one data qubit each, made by remote CX gates
    (cat-entanglement: one pair and one bit per module): along the line N0 - N1 - ... (each
    module entangles the next), or from the centre N0 of a star. Every module returns its
    data qubit (the output state is the K-qubit GHZ state over ideal links); with ``measure``
    each also measures it (``output=True``: the counts show 0...0 and 1...1)."""
    names = [f"N{i}" for i in range(modules)]
    if topology == "line":
        pairs = list(zip(names, names[1:]))
    elif topology == "star":
        pairs = [(names[0], x) for x in names[1:]]
    else:
        raise ValueError(f"topology must be 'line' or 'star', got {topology!r}")
    children: dict[str, list[str]] = {x: [] for x in names}
    parent: dict[str, str] = {}
    for x, y in pairs:
        children[x].append(y)
        parent[y] = x
    comm = max(2, max(len(c) for c in children.values()))
    net = network_from_dict({
        "nodes": {x: {"data_qubits": 1, "comm_qubits": comm} for x in names},
        "links": [{"between": [x, y], "fidelity": fidelity, "latency": latency}
                  for x, y in pairs]},
        name=f"ghz-{topology}{modules}")

    def program(name: str):
        def run(node: NodeView):
            q = node.qubit()
            if name in parent:   # a CX from the parent's qubit onto this one
                share = yield from cat_entangle_recv(node, parent[name])
                node.gate("cx", share, q)
                yield from cat_disentangle_send(node, share, parent[name])
            else:
                node.gate("h", q)
            for child in children[name]:
                yield from cat_entangle_send(node, q, child)
                yield from cat_disentangle_recv(node, q, child)
            if measure:
                node.measure(q, output=True)
            return q
        return run

    return net, {x: program(x) for x in names}


def purified_chain(repeaters: int, fidelity: float = 0.9, *, protocol: str = "dejmps",
                   rounds: int = 1, t2: float | None = None, latency: float = 5e-6,
                   attempt_time: float = 1e-6, gate_error_2q: float = 0.0,
                   readout_error: float = 0.0) -> tuple[Network, dict[str, Callable]]:
    """An end-to-end pair over A - R1 - ... - Rk - B, gate level: every link's pair is
    distilled by ``rounds`` rounds of ``protocol`` with retries
    (:func:`~qsim_dist.network.gate_protocols.purify`: the nodes read their outcomes, so this
    runs online), then every repeater swaps and sends its two bits to B, which corrects. Links
    purify in two waves (nodes at even positions start with their right link, odd ones with
    their left). A and B return their halves; over ideal memories and local gates the pair's
    Pauli weights are those of :func:`~qsim_dist.network.physics.purification_rounds`
    composed along the chain by :func:`~qsim_dist.network.physics.swapped_weights`."""
    names = _chain_names(repeaters)
    decay = {"t2": t2, "t1": 10 * t2} if t2 is not None else {}
    local = {"gate_error_2q": gate_error_2q, "readout_error": readout_error, **decay}
    link = {"fidelity": fidelity, "latency": latency, "attempt_time": attempt_time}
    comm = rounds + 1
    net = network_from_dict({
        "nodes": {"A": {"data_qubits": 1, "comm_qubits": comm, **local},
                  "B": {"data_qubits": 1, "comm_qubits": comm, **local},
                  **{r: {"repeater": True, "comm_qubits": comm + 1, **local}
                     for r in names[1:-1]}},
        "links": [{"between": [x, y], **link} for x, y in zip(names, names[1:])]},
        name=f"purified-chain{repeaters}")

    def distil(node: NodeView, peer: str):
        return (yield from purify(node, peer, protocol=protocol, rounds=rounds))

    def end(i: int):
        def program(node: NodeView):
            half = yield from distil(node, names[1 if i == 0 else -2])
            if i:
                yield from swap_correct(node, half, names[1:-1])
            return half
        return program

    def repeater(i: int):
        def program(node: NodeView):
            left, right = names[i - 1], names[i + 1]
            first, second = (right, left) if i % 2 == 0 else (left, right)
            halves = {first: (yield from distil(node, first))}
            halves[second] = yield from distil(node, second)
            l, r = halves[left], halves[right]
            node.gate("cx", l, r)
            node.gate("h", l)
            z, x = node.measure(l), node.measure(r)
            node.free(l)
            node.free(r)
            yield node.send("B", x, z)
        return program

    programs = {"A": end(0), **{r: repeater(i) for i, r in enumerate(names[1:-1], 1)},
                "B": end(1)}
    return net, programs
