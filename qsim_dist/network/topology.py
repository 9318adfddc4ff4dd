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

Every number must be finite and in its range (a :class:`NetworkError` line names the node or
link, the key and the range otherwise): times in ``[0, MAX_SECONDS]`` (``t1``, ``t2`` in
``(0, MAX_SECONDS]``; leave them out for no decay), error probabilities in ``[0, 1]``, ``fidelity``
in ``[0.25, 1]``, ``success_probability`` and ``transduction_efficiency`` in ``(0, 1]`` with their
product at least ``1 / MAX_EXPECTED_ATTEMPTS``, qubit counts in ``[0, MAX_NODE_QUBITS]``.

Everything here is physics parameters and graph queries; no arrays, no simulation.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import validation
from ..errors import QsimDistError

# Light in optical fibre: ~2/3 c, i.e. about 5 microseconds per km.
SECONDS_PER_KM = 1.0 / 2.0e5

#: the largest time (seconds) a network accepts, about 30 000 years: far beyond any device, and
#: small enough that sums and products of times (a schedule, attempts x attempt_time) stay finite
MAX_SECONDS = 1e12
#: the most generation attempts a link may expect per pair (1 / (success_probability x
#: transduction_efficiency)); a sampled geometric count then fits an int64 with certainty
#: instead of saturating at 2^63 (p = 1e-300 would)
MAX_EXPECTED_ATTEMPTS = 1e12
#: the most data or communication qubits of one node (the runtime keeps a slot per qubit)
MAX_NODE_QUBITS = 4096


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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise NetworkError(f"a node name must be a non-empty string, got {self.name!r}")
        _check_fields(self, _NODE_FIELDS, f"node {self.name!r}:", decay_may_be_inf=True)
        if not isinstance(self.repeater, bool):
            raise NetworkError(f"node {self.name!r}: repeater must be true or false, "
                               f"got {self.repeater!r}")
        if self.t2 > 2 * self.t1 * (1 + 1e-12):
            raise NetworkError(f"node {self.name!r}: t2 = {self.t2:g} s exceeds 2*t1 = "
                               f"{2 * self.t1:g} s (unphysical)")


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

    def __post_init__(self) -> None:
        _check_fields(self, _LINK_FIELDS, f"link {self.a}-{self.b}:")
        _check_attempts(self.success_probability, self.transduction_efficiency,
                        f"link {self.a}-{self.b}:")

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
    # neighbours in file order, and every path and latency asked for once: the runtime asks
    # on every send and pair request, and lowerings of one run ask the same questions again
    _ordered: dict[str, list[str]] = field(init=False, repr=False, compare=False)
    _paths: dict[tuple[str, str], tuple[str, ...]] = field(init=False, repr=False,
                                                           compare=False)
    _latencies: dict[tuple[str, str], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        adjacent: dict[str, dict[str, Link]] = {name: {} for name in self.nodes}
        for link in self.links:
            adjacent[link.a][link.b] = link
            adjacent[link.b][link.a] = link
        order = {name: i for i, name in enumerate(self.nodes)}
        object.__setattr__(self, "_adjacent", adjacent)
        object.__setattr__(self, "_ordered", {name: sorted(near, key=order.__getitem__)
                                              for name, near in adjacent.items()})
        object.__setattr__(self, "_paths", {})
        object.__setattr__(self, "_latencies", {})

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
        known = self._paths.get((a, b))
        if known is None:
            known = self._paths[(a, b)] = tuple(self._search(a, b))
        return list(known)

    def _search(self, a: str, b: str) -> list[str]:
        """Breadth first from ``a`` until ``b`` is found (so the cost follows the distance,
        not the size of the network); neighbours in file order."""
        previous: dict[str, str | None] = {a: None}
        queue = deque([a])
        while queue and b not in previous:
            here = queue.popleft()
            for nxt in self._ordered[here]:
                if nxt not in previous:
                    previous[nxt] = here
                    queue.append(nxt)
        if b not in previous:
            raise NetworkError(f"nodes {a!r} and {b!r} are not connected")
        path = [b]
        while path[-1] != a:
            path.append(previous[path[-1]])  # type: ignore[arg-type]
        return path[::-1]

    def latency(self, a: str, b: str) -> float:
        """Classical latency from ``a`` to ``b``: the sum over the links of :meth:`path`."""
        known = self._latencies.get((a, b))
        if known is None:
            path = self.path(a, b)
            known = self._latencies[(a, b)] = sum(self._adjacent[x][y].latency
                                                  for x, y in zip(path, path[1:]))
        return known

    def distance(self, a: str, b: str) -> int:
        """Number of links on a shortest path (0 for the same node)."""
        return len(self.path(a, b)) - 1


# ---- reading a network file -----------------------------------------------------------------

_NODE_KEYS = {"data_qubits", "comm_qubits", "repeater", "t1", "t2", "gate_time", "measure_time",
              "gate_error_1q", "gate_error_2q", "readout_error"}
_LINK_KEYS = {"between", "fidelity", "attempt_time", "success_probability", "latency",
              "length_km", "transduction_efficiency"}


# The kind of every number of a node or link, and the range of each kind: one table, used by
# the file reader (the raw values, named by their key in the file) and by Node and Link
# themselves (so that a network built in Python obeys the same rules).
_NODE_FIELDS = {"data_qubits": "qubits", "comm_qubits": "qubits", "t1": "decay", "t2": "decay",
                "gate_time": "seconds", "measure_time": "seconds",
                "gate_error_1q": "probability", "gate_error_2q": "probability",
                "readout_error": "probability"}
_LINK_FIELDS = {"fidelity": "fidelity", "attempt_time": "seconds",
                "success_probability": "efficiency", "latency": "seconds",
                "transduction_efficiency": "efficiency"}
# kind -> (low, high, low excluded)
_RANGES = {"seconds": (0.0, MAX_SECONDS, False), "decay": (0.0, MAX_SECONDS, True),
           "probability": (0.0, 1.0, False), "fidelity": (0.25, 1.0, False),
           "efficiency": (0.0, 1.0, True), "length": (0.0, MAX_SECONDS / SECONDS_PER_KM, False)}


def _field(value: Any, kind: str, what: str, decay_may_be_inf: bool = False) -> float | int:
    """``value`` checked as a ``kind`` number (see ``_RANGES``); one NetworkError line naming
    ``what`` and the allowed range otherwise."""
    if kind == "qubits":
        return validation.count(value, what, NetworkError, maximum=MAX_NODE_QUBITS)
    if decay_may_be_inf and kind == "decay" and value == math.inf:
        return math.inf   # the default of a Node built in Python: no decay
    low, high, low_open = _RANGES[kind]
    bound = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    hint = " (leave it out for no decay)" if kind == "decay" else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NetworkError(f"{what} must be a finite number in {bound}{hint}, "
                           f"got {validation.describe(value)}")
    try:
        out = validation.finite(value, what, NetworkError)
    except NetworkError:
        raise NetworkError(f"{what} must be a finite number in {bound}{hint}, "
                           f"got {validation.describe(value)}") from None
    if out < low or out > high or (low_open and out == low):
        raise NetworkError(f"{what} must be a finite number in {bound}{hint}, got {out:g}")
    return out


def _check_fields(values: Any, fields: Mapping[str, str], where: str,
                  decay_may_be_inf: bool = False) -> dict[str, float | int]:
    """Check the numbers of a node or link: the keys of ``fields`` present in ``values`` (a
    mapping: a file's table), or all of them (an object: a Node or a Link). ``where`` names the
    node or link ("nodes.A", or "node 'A':" for an object)."""
    out = {}
    for key, kind in fields.items():
        if isinstance(values, Mapping):
            if key not in values:
                continue
            value = values[key]
        else:
            value = getattr(values, key)
        what = f"{where} {key}" if where.endswith(":") else f"{where}.{key}"
        out[key] = _field(value, kind, what, decay_may_be_inf)
    return out


def _check_attempts(success_probability: float, efficiency: float, where: str) -> None:
    """Refuse a link whose expected attempts per pair exceed MAX_EXPECTED_ATTEMPTS (a sampled
    count would overflow or saturate, and the run would be meaningless)."""
    p = success_probability * efficiency
    if not p * MAX_EXPECTED_ATTEMPTS >= 1.0:
        raise NetworkError(
            f"{where} success_probability x transduction_efficiency = {p:g} expects "
            f"{1.0 / p if p > 0 else math.inf:.3g} attempts per pair, more than the "
            f"{MAX_EXPECTED_ATTEMPTS:g} allowed (the product must be >= "
            f"{1.0 / MAX_EXPECTED_ATTEMPTS:g})")


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
    values = _check_fields(spec, _NODE_FIELDS, where)   # every given number, finite
    data = values.setdefault("data_qubits", 0)
    if repeater and data:
        raise NetworkError(f"{where}: a repeater holds no data qubits (data_qubits = {data})")
    if not repeater and data == 0:
        raise NetworkError(f"{where}: a compute node needs data_qubits >= 1 "
                           "(or repeater = true)")
    t1 = values.get("t1", math.inf)
    # T2 <= 2 T1 is the physical bound; by default a node dephases only through its T1
    values.setdefault("t2", math.inf if t1 == math.inf else min(2 * t1, MAX_SECONDS))
    if values["t2"] > 2 * t1 * (1 + 1e-12):
        raise NetworkError(f"{where}: t2 = {values['t2']:g} s exceeds 2*t1 = {2 * t1:g} s "
                           "(unphysical)")
    return Node(name=name, repeater=repeater, **values)


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
    values = _check_fields(spec, _LINK_FIELDS, where)   # every given number, finite
    if "length_km" in spec:
        values["latency"] = _field(spec["length_km"], "length",
                                   f"{where}.length_km") * SECONDS_PER_KM
    _check_attempts(values.get("success_probability", 1.0),
                    values.get("transduction_efficiency", 1.0), f"{where}:")
    return Link(a=a, b=b, **values)


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
