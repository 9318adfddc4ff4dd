"""The machine being modelled: QPU nodes joined by entanglement links, read from a TOML file.

A network file names its nodes and its links::

    [nodes.A]
    data_qubits = 4
    comm_qubits = 2
    t1 = 1e-3                 # seconds (optional; also t2, gate_time, measure_time,
                              # gate_error_1q, gate_error_2q, readout_error)
    [nodes.R]
    repeater = true           # no data qubits; only swaps entanglement along a path
    comm_qubits = 2
    [[links]]
    between = ["A", "R"]
    fidelity = 0.95           # Werner fidelity of a delivered EPR pair
    attempt_time = 1e-6       # seconds per generation attempt
    success_probability = 0.1 # per attempt
    latency = 5e-6            # one-way classical latency in seconds (or length_km)
    transduction_efficiency = 1.0  # optional: multiplies the success probability

Everything here is physics parameters and graph queries; no arrays, no simulation.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import QsimDistError

# Light in optical fibre: ~2/3 c, i.e. about 5 microseconds per km.
SECONDS_PER_KM = 1.0 / 2.0e5


class NetworkError(QsimDistError):
    """A network description is malformed or inconsistent."""


@dataclass(frozen=True)
class Node:
    """A QPU module (or a repeater, which has communication qubits only)."""

    name: str
    data_qubits: int = 0
    comm_qubits: int = 2
    repeater: bool = False
    t1: float = math.inf            # seconds; inf = no amplitude damping while idle
    t2: float = math.inf            # seconds; inf = no dephasing while idle (t2 <= 2 t1)
    gate_time: float = 0.0          # seconds per local gate
    measure_time: float = 0.0       # seconds per measurement (and reset)
    gate_error_1q: float = 0.0      # depolarizing probability after each 1-qubit gate
    gate_error_2q: float = 0.0      # 2-qubit depolarizing probability after each 2-qubit gate
    readout_error: float = 0.0      # probability that a measured bit is recorded flipped


@dataclass(frozen=True)
class Link:
    """An entanglement link between two nodes, with its classical channel."""

    a: str
    b: str
    fidelity: float = 1.0               # Werner fidelity of a delivered pair
    attempt_time: float = 0.0           # seconds per generation attempt
    success_probability: float = 1.0    # per attempt, before transduction
    latency: float = 0.0                # one-way classical latency, seconds
    transduction_efficiency: float = 1.0

    @property
    def ends(self) -> tuple[str, str]:
        return (self.a, self.b)

    @property
    def attempt_success(self) -> float:
        """Probability that one attempt delivers a pair."""
        return self.success_probability * self.transduction_efficiency

    @property
    def mean_generation_time(self) -> float:
        """Expected time to deliver one pair: attempts are geometric with mean 1/p."""
        return self.attempt_time / self.attempt_success

    def other(self, node: str) -> str:
        return self.b if node == self.a else self.a


@dataclass(frozen=True)
class Network:
    """Nodes (in file order) and links; answers the graph questions the compiler and runtime ask."""

    nodes: Mapping[str, Node]
    links: tuple[Link, ...]
    name: str = "network"
    _adjacent: dict[str, dict[str, Link]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        adjacent: dict[str, dict[str, Link]] = {name: {} for name in self.nodes}
        for link in self.links:
            adjacent[link.a][link.b] = link
            adjacent[link.b][link.a] = link
        object.__setattr__(self, "_adjacent", adjacent)

    @property
    def compute_nodes(self) -> list[Node]:
        """The nodes that hold data qubits (not repeaters), in file order."""
        return [n for n in self.nodes.values() if not n.repeater]

    @property
    def data_capacity(self) -> int:
        return sum(n.data_qubits for n in self.compute_nodes)

    def link(self, a: str, b: str) -> Link | None:
        """The link between ``a`` and ``b``, or None when they are not neighbours."""
        return self._adjacent[a].get(b)

    def neighbours(self, node: str) -> list[str]:
        return list(self._adjacent[node])

    def path(self, a: str, b: str) -> list[str]:
        """A shortest path (fewest links) from ``a`` to ``b``, both ends included; ties are
        broken by file order so that the same network always gives the same path. Intermediate
        nodes swap entanglement (repeaters or compute nodes alike)."""
        if a not in self.nodes or b not in self.nodes:
            raise NetworkError(f"no node named {a if a not in self.nodes else b!r}")
        order = {name: i for i, name in enumerate(self.nodes)}
        previous: dict[str, str | None] = {a: None}
        queue = deque([a])
        while queue:
            here = queue.popleft()
            if here == b:
                break
            for nxt in sorted(self._adjacent[here], key=order.__getitem__):
                if nxt not in previous:
                    previous[nxt] = here
                    queue.append(nxt)
        if b not in previous:
            raise NetworkError(f"nodes {a!r} and {b!r} are not connected")
        path = [b]
        while path[-1] != a:
            path.append(previous[path[-1]])  # type: ignore[arg-type]
        return path[::-1]

    def distance(self, a: str, b: str) -> int:
        """Number of links on a shortest path (0 for the same node)."""
        return len(self.path(a, b)) - 1


# ---- reading a network file -----------------------------------------------------------------

_NODE_KEYS = {"data_qubits", "comm_qubits", "repeater", "t1", "t2", "gate_time", "measure_time",
              "gate_error_1q", "gate_error_2q", "readout_error"}
_LINK_KEYS = {"between", "fidelity", "attempt_time", "success_probability", "latency",
              "length_km", "transduction_efficiency"}


def _number(value: Any, what: str, low: float = 0.0, high: float = math.inf,
            low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NetworkError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or value < low or value > high or (low_open and value == low):
        bound = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise NetworkError(f"{what} must be in {bound}, got {value:g}")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NetworkError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _check_table(spec: Any, where: str, known: set[str]) -> None:
    if not isinstance(spec, Mapping):
        raise NetworkError(f"{where} must be a table")
    unknown = set(spec) - known
    if unknown:
        raise NetworkError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                           f"(known: {', '.join(sorted(known))})")


def _node(name: str, spec: Any) -> Node:
    where = f"nodes.{name}"
    _check_table(spec, where, _NODE_KEYS)
    repeater = spec.get("repeater", False)
    if not isinstance(repeater, bool):
        raise NetworkError(f"{where}.repeater must be true or false, got {repeater!r}")
    data = _count(spec.get("data_qubits", 0), f"{where}.data_qubits")
    if repeater and data:
        raise NetworkError(f"{where}: a repeater holds no data qubits (data_qubits = {data})")
    if not repeater and data == 0:
        raise NetworkError(f"{where}: a compute node needs data_qubits >= 1 "
                           "(or repeater = true)")
    comm = _count(spec.get("comm_qubits", 2), f"{where}.comm_qubits")
    t1 = _number(spec.get("t1", math.inf), f"{where}.t1", low_open=True)
    t2 = _number(spec.get("t2", min(2 * t1, math.inf)), f"{where}.t2", low_open=True)
    if t2 > 2 * t1 * (1 + 1e-12):
        raise NetworkError(f"{where}: t2 = {t2:g} s exceeds 2*t1 = {2 * t1:g} s (unphysical)")
    return Node(
        name=name, data_qubits=data, comm_qubits=comm, repeater=repeater, t1=t1, t2=t2,
        gate_time=_number(spec.get("gate_time", 0.0), f"{where}.gate_time"),
        measure_time=_number(spec.get("measure_time", 0.0), f"{where}.measure_time"),
        gate_error_1q=_number(spec.get("gate_error_1q", 0.0), f"{where}.gate_error_1q", high=1),
        gate_error_2q=_number(spec.get("gate_error_2q", 0.0), f"{where}.gate_error_2q", high=1),
        readout_error=_number(spec.get("readout_error", 0.0), f"{where}.readout_error", high=1))


def _link(index: int, spec: Any, nodes: Mapping[str, Node]) -> Link:
    where = f"links[{index}]"
    _check_table(spec, where, _LINK_KEYS)
    between = spec.get("between")
    if (not isinstance(between, list) or len(between) != 2
            or not all(isinstance(x, str) for x in between)):
        raise NetworkError(f"{where}.between must be two node names, got {between!r}")
    a, b = between
    for end in (a, b):
        if end not in nodes:
            raise NetworkError(f"{where}.between names unknown node {end!r}")
    if a == b:
        raise NetworkError(f"{where} joins node {a!r} to itself")
    for end in (a, b):
        if nodes[end].comm_qubits == 0:
            raise NetworkError(f"{where}: node {end!r} has no communication qubits")
    if "latency" in spec and "length_km" in spec:
        raise NetworkError(f"{where}: give latency or length_km, not both")
    if "length_km" in spec:
        latency = _number(spec["length_km"], f"{where}.length_km") * SECONDS_PER_KM
    else:
        latency = _number(spec.get("latency", 0.0), f"{where}.latency")
    return Link(
        a=a, b=b,
        fidelity=_number(spec.get("fidelity", 1.0), f"{where}.fidelity", low=0.25, high=1),
        attempt_time=_number(spec.get("attempt_time", 0.0), f"{where}.attempt_time"),
        success_probability=_number(spec.get("success_probability", 1.0),
                                    f"{where}.success_probability", high=1, low_open=True),
        latency=latency,
        transduction_efficiency=_number(spec.get("transduction_efficiency", 1.0),
                                        f"{where}.transduction_efficiency", high=1,
                                        low_open=True))


def network_from_dict(data: Mapping[str, Any], name: str = "network") -> Network:
    """Build and validate a :class:`Network` from the parsed TOML form (see module docstring)."""
    if not isinstance(data, Mapping):
        raise NetworkError("a network must be a table")
    unknown = set(data) - {"nodes", "links", "name"}
    if unknown:
        raise NetworkError(f"unknown top-level key {sorted(unknown)[0]!r} (known: nodes, links)")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        raise NetworkError("a network needs at least one [nodes.NAME] table")
    nodes = {str(n): _node(str(n), spec) for n, spec in raw_nodes.items()}
    raw_links = data.get("links", [])
    if not isinstance(raw_links, list):
        raise NetworkError("links must be an array of tables ([[links]])")
    links = tuple(_link(i, spec, nodes) for i, spec in enumerate(raw_links))
    seen: set[frozenset[str]] = set()
    for i, link in enumerate(links):
        pair = frozenset(link.ends)
        if pair in seen:
            raise NetworkError(f"links[{i}]: a second link between {link.a!r} and {link.b!r}")
        seen.add(pair)
    network = Network(nodes=nodes, links=links, name=str(data.get("name", name)))
    if not network.compute_nodes:
        raise NetworkError("a network needs at least one compute node (not a repeater)")
    first = network.compute_nodes[0].name
    for node in nodes:
        network.path(first, node)  # raises NetworkError when the graph is not connected
    return network


def load_network(path: str | Path) -> Network:
    """Read and validate a network file; every problem is one :class:`NetworkError` line."""
    from ..io.toml import read_toml

    path = Path(path)
    data = read_toml(path, "network", NetworkError)
    try:
        return network_from_dict(data, name=path.stem)
    except NetworkError as exc:
        raise NetworkError(f"{path}: {exc}") from None
