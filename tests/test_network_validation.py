"""The network model refuses every bad input in one line: network files (non-finite, out of
range, wrong type, links expecting too many attempts), node-program calls (wrong types and values,
freed or foreign qubits, the program's own exceptions) and runs that never end (max_events,
max_time); distributed programs with indices out of range.

Inputs are generated (hypothesis). ``QSIM_COUNT_FAILURES=FILE`` records each generated input that
breaks the contract in FILE instead of failing (used to count them on the code before the fix).
"""

from __future__ import annotations

import math
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qsim_dist.errors import OptionError, QsimDistError
from qsim_dist.network import (DistributedProgram, LocalGate, NetworkError, ProgramError,
                               RemoteGate, Teleport, load_network, lower_nodes,
                               network_from_dict)
from qsim_dist.network import nodes as nodes_module
from qsim_dist.network.runtime import Runtime

# (getattr: the file also runs against the code before the fix, to count what it got wrong)
NodeProgramError = getattr(nodes_module, "NodeProgramError", ProgramError)
RunLimitError = getattr(nodes_module, "RunLimitError", ProgramError)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CIRCUIT = str(EXAMPLES / "dqc_small.qasm")
THIS = os.path.abspath(__file__)
COUNT = os.environ.get("QSIM_COUNT_FAILURES")

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextmanager
def contract(label: str):
    """Assertions about one generated input; with QSIM_COUNT_FAILURES, a broken contract is
    recorded rather than raised (so that every example runs, none is shrunk)."""
    if not COUNT:
        yield
        return
    try:
        yield
    except BaseException as exc:   # noqa: BLE001 - counting mode only
        with open(COUNT, "a") as f:
            f.write(f"FAIL {label}: {type(exc).__name__}\n")
    else:
        with open(COUNT, "a") as f:
            f.write(f"OK {label}\n")


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, text
    return text


# ---- network files ---------------------------------------------------------------------------

def toml_value(value) -> str:
    """``value`` written as TOML (nan and inf as TOML spells them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def network_text(node_a: dict | None = None, link: dict | None = None) -> str:
    a = {"data_qubits": 2, "comm_qubits": 2, **(node_a or {})}
    lines = ["[nodes.A]"] + [f"{k} = {toml_value(v)}" for k, v in a.items()]
    lines += ["[nodes.B]", "data_qubits = 2", "[[links]]", 'between = ["A", "B"]']
    lines += [f"{k} = {toml_value(v)}" for k, v in (link or {}).items()]
    return "\n".join(lines) + "\n"


NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
WRONG_TYPE = st.one_of(st.text("abz019.e-+ ", max_size=5), st.booleans(),
                       st.lists(st.integers(0, 3), max_size=2), st.just({"x": 1}))
# kind -> (allowed closed/open range for good values, bad numbers just outside or absurd)
TIMES = st.one_of(NON_FINITE, st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False),
                  st.floats(min_value=1.001e12, allow_nan=False, allow_infinity=False),
                  st.integers(max_value=-1), WRONG_TYPE)
DECAY = st.one_of(TIMES, st.just(0), st.just(0.0))
PROBABILITY = st.one_of(NON_FINITE, st.floats(max_value=-1e-300, allow_nan=False),
                        st.floats(min_value=1.0000001, allow_nan=False, allow_infinity=False),
                        st.integers(min_value=2), WRONG_TYPE)
FIDELITY = st.one_of(PROBABILITY, st.floats(0.0, 0.2499), st.just(0))
EFFICIENCY = st.one_of(PROBABILITY, st.just(0.0), st.just(0),
                       st.floats(min_value=1e-300, max_value=9e-13))   # too many attempts
QUBITS = st.one_of(st.integers(max_value=-1), st.integers(min_value=4097, max_value=2 ** 63 - 1),
                   st.floats(allow_nan=True), WRONG_TYPE)
LENGTH = st.one_of(NON_FINITE, st.floats(max_value=-1e-300, allow_nan=False),
                   st.floats(min_value=2.1e17, allow_nan=False, allow_infinity=False), WRONG_TYPE)

NODE_BAD = {"t1": DECAY, "t2": DECAY, "gate_time": TIMES, "measure_time": TIMES,
            "gate_error_1q": PROBABILITY, "gate_error_2q": PROBABILITY,
            "readout_error": PROBABILITY, "comm_qubits": QUBITS, "data_qubits": QUBITS}
LINK_BAD = {"fidelity": FIDELITY, "attempt_time": TIMES, "success_probability": EFFICIENCY,
            "transduction_efficiency": EFFICIENCY, "latency": TIMES, "length_km": LENGTH}


@st.composite
def bad_network(draw):
    """(TOML text, the node or link it names, the key at fault)."""
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(NODE_BAD)))
        value = draw(NODE_BAD[key])
        if key == "t2":   # T1 large enough that only T2's own range can be at fault
            return network_text({"t2": value}), "nodes.A", key
        return network_text({key: value}), "nodes.A", key
    key = draw(st.sampled_from(sorted(LINK_BAD)))
    value = draw(LINK_BAD[key])
    return network_text(link={key: value}), "links[0]", key


@settings(FAST, max_examples=200)
@given(case=bad_network())
def test_generated_bad_network_files_are_one_network_error(tmp_path, case):
    text, where, key = case
    path = tmp_path / "net.toml"
    path.write_text(text)
    with contract(f"network {where}.{key}"):
        with pytest.raises(NetworkError) as err:
            load_network(path)
        message = one_line(err.value)
        assert where in message, message
        # the product rule names both factors; every other message names its key
        assert key in message or "success_probability x transduction_efficiency" in message


GOOD_NODE = {"t1": st.floats(1e-9, 1e6), "gate_time": st.floats(0, 1e3),
             "measure_time": st.floats(0, 1e3), "gate_error_1q": st.floats(0, 1),
             "gate_error_2q": st.floats(0, 1), "readout_error": st.floats(0, 1),
             "comm_qubits": st.integers(1, 4096), "data_qubits": st.integers(1, 4096)}
GOOD_LINK = {"fidelity": st.floats(0.25, 1), "attempt_time": st.floats(0, 1e12),
             "success_probability": st.floats(1e-6, 1), "latency": st.floats(0, 1e12),
             "transduction_efficiency": st.floats(1e-6, 1)}


@FAST
@given(node=st.fixed_dictionaries({}, optional=GOOD_NODE),
       link=st.fixed_dictionaries({}, optional=GOOD_LINK))
def test_generated_good_network_files_load_unchanged(tmp_path, node, link):
    path = tmp_path / "net.toml"
    path.write_text(network_text(node, link))
    net = load_network(path)
    for key, value in node.items():
        assert getattr(net.nodes["A"], key) == value
    for key, value in link.items():
        assert getattr(net.links[0], key) == value


@pytest.mark.parametrize("values, fragment", [
    ({"success_probability": 1e-300}, r"more than the 1e\+12 allowed"),
    ({"success_probability": 1e-6, "transduction_efficiency": 1e-7}, "attempts"),
    ({"attempt_time": math.inf}, "attempt_time"),
    ({"latency": -1e-6}, "latency"),
    ({"fidelity": math.nan}, "fidelity")])
def test_hand_picked_links(tmp_path, values, fragment):
    path = tmp_path / "net.toml"
    path.write_text(network_text(link=values))
    with contract(f"link {values}"):
        with pytest.raises(NetworkError, match=fragment):
            load_network(path)


def test_networks_built_in_python_obey_the_same_rules():
    from qsim_dist.network import Link, Node

    for make in (lambda: Node("A", data_qubits=1, t1=math.nan),
                 lambda: Node("A", data_qubits=1, t2=-1.0),
                 lambda: Node("A", data_qubits=1, comm_qubits=-2),
                 lambda: Link("A", "B", latency=math.inf),
                 lambda: Link("A", "B", success_probability=1e-300),
                 lambda: network_from_dict({"nodes": {"A": {"data_qubits": 1,
                                                            "gate_time": 10 ** 400}}})):
        with contract("python network"):
            with pytest.raises(NetworkError) as err:
                make()
            one_line(err.value)
    assert Node("A", data_qubits=1).t1 == math.inf     # the default still means no decay


@pytest.mark.parametrize("values", [{"node_a": {"t1": math.inf}},
                                    {"link": {"success_probability": 1e-300}},
                                    {"link": {"latency": math.nan}},
                                    {"node_a": {"comm_qubits": 100_000}}])
def test_cli_dqc_refuses_a_bad_network_file_in_one_line(tmp_path, capsys, values):
    from qsim_dist.cli import main

    path = tmp_path / "net.toml"
    path.write_text(network_text(**values))
    out = tmp_path / "r.h5"
    with contract(f"cli {values}"):
        rc = main(["dqc", CIRCUIT, "--network", str(path), "--shots", "4", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert "net.toml" in err and not out.exists()


# ---- node programs: wrong calls ----------------------------------------------------------------

PAIR = network_from_dict({"nodes": {"A": {"data_qubits": 2, "comm_qubits": 2},
                                    "B": {"data_qubits": 2, "comm_qubits": 2}},
                          "links": [{"between": ["A", "B"], "latency": 1e-6}]})


def idle(node):
    yield node.wait(0)


def b_qubit(node):
    q = node.qubit()
    node.gate("h", q)
    yield node.wait(0)
    return q


BAD_NUMBERS = st.one_of(NON_FINITE, st.floats(max_value=-1e-300, allow_nan=False,
                                               allow_infinity=False),
                        st.text(max_size=3), st.none(), st.just([1.0]), st.just(1j))
NOT_A_NODE = st.one_of(st.text(max_size=4).filter(lambda s: s not in ("B",)), st.integers(),
                       st.none(), st.just(["B"]), st.just(("B",)))
NOT_A_QUBIT = st.one_of(st.integers(-2, 5), st.text(max_size=3), st.none(), st.floats())
NOT_A_GATE = st.one_of(st.text("qwz_!1", min_size=1, max_size=6),
    st.sampled_from(["measure", "reset", "barrier"]), st.integers(), st.none())


BAD_PARAMS = BAD_NUMBERS.filter(lambda v: not (isinstance(v, float) and math.isfinite(v)))
ARITY = st.sampled_from([("h", 2), ("cx", 1), ("cx", 3), ("ccx", 2)])
PARAM_COUNT = st.sampled_from([("rx", 0), ("rx", 2), ("h", 1), ("u3", 2)])
OUTPUT = st.one_of(st.integers(0, 1), st.text(max_size=2), st.none())
BITS = st.one_of(st.integers(0, 3), st.text(max_size=2), st.none())


@st.composite
def wrong_call(draw):
    """A node program for A making one wrong call (and the calls that set it up)."""
    kind = draw(st.sampled_from(["wait", "gate name", "gate arity", "gate params",
                                 "gate param count", "gate qubit", "freed qubit",
                                 "free twice", "peer", "measure output", "correct bits",
                                 "yield", "same qubit twice", "params type"]))
    # draw only what this kind uses (keeps generation cheap)
    args = {"wait": BAD_NUMBERS, "gate params": BAD_PARAMS, "peer": NOT_A_NODE,
            "gate qubit": NOT_A_QUBIT, "yield": NOT_A_QUBIT, "gate name": NOT_A_GATE,
            "gate arity": ARITY, "gate param count": PARAM_COUNT, "measure output": OUTPUT,
            "correct bits": BITS}
    arg = draw(args[kind]) if kind in args else None
    bad_number = bad_param = peer = qubit = gate = arity = param_count = output = bits = arg
    peer_op = draw(st.sampled_from(["send", "recv", "epr"])) if kind == "peer" else None

    def program(node):
        q = node.qubit()
        r = node.qubit()
        if kind == "wait":
            yield node.wait(bad_number)
        elif kind == "gate name":
            node.gate(gate, q)
        elif kind == "gate arity":
            name, n = arity
            node.gate(name, *([q, r] + [q] * 3)[:n])
        elif kind == "gate params":            # a negative angle is a good angle
            node.gate("rx", q, params=(bad_param,))
        elif kind == "gate param count":
            name, n = param_count
            node.gate(name, q, params=(0.1,) * n)
        elif kind == "params type":
            node.gate("rx", q, params=0.5)
        elif kind == "gate qubit":
            node.gate("h", qubit)
        elif kind == "freed qubit":
            node.free(q)
            node.gate("x", q)
        elif kind == "free twice":
            node.free(q)
            node.free(q)
        elif kind == "peer":
            getattr(node, peer_op)(peer)
        elif kind == "measure output":
            node.measure(q, output=output)
        elif kind == "correct bits":
            node.correct("x", q, bits=bits)
        elif kind == "yield":
            yield qubit
        elif kind == "same qubit twice":
            node.gate("cx", q, q)
        yield node.wait(0)

    return kind, program


@settings(FAST, max_examples=150)
@given(case=wrong_call())
def test_generated_wrong_node_program_calls_are_one_program_error(case):
    kind, program = case
    with contract(f"node call {kind}"):
        with pytest.raises(ProgramError) as err:
            lower_nodes({"A": program, "B": idle}, PAIR)
        message = one_line(err.value)
        assert "'A'" in message or "A" in message.split(":")[0], message


def test_a_qubit_of_another_node_or_run_is_refused():
    holder = {}

    def b_keeps(node):
        holder["q"] = node.qubit()
        yield node.send("A")

    def a_uses(node):
        yield node.recv("B")
        node.gate("h", holder["q"])

    with contract("qubit of B"):
        with pytest.raises(ProgramError, match="qubit 1 of node 'B'|of node 'B'"):
            lower_nodes({"B": b_keeps, "A": a_uses}, PAIR)

    def a_keeps(node):
        holder["a"] = node.qubit()
        yield node.wait(0)

    def a_reuses(node):
        node.gate("h", holder["a"])
        yield node.wait(0)

    lower_nodes({"A": a_keeps}, PAIR)
    with contract("qubit of another run"):
        with pytest.raises(ProgramError, match="another run"):
            lower_nodes({"A": a_reuses}, PAIR)


def test_a_freed_qubit_handle_is_dead_but_its_slot_is_reused():
    def program(node):
        q = node.qubit()
        node.gate("x", q)
        node.free(q)
        r = node.qubit()              # the same physical qubit, a new handle
        node.gate("h", r)
        yield node.wait(0)
        assert r.index == q.index and r is not q
        with pytest.raises(ProgramError, match="after freeing it"):
            node.gate("h", q)
        return r

    with contract("freed qubit reuse"):
        low = lower_nodes({"A": program}, PAIR)
        assert len(low.final_qubits) == 1

    def returns_freed(node):
        q = node.qubit()
        node.free(q)
        yield node.wait(0)
        return q

    with contract("returns a freed qubit"):
        with pytest.raises(ProgramError, match="freed"):
            lower_nodes({"A": returns_freed}, PAIR)


def test_wait_inf_is_refused_not_makespan_zero():
    def forever(node):
        yield node.wait(math.inf)

    with contract("wait inf"):
        with pytest.raises(ProgramError, match="wait"):
            lower_nodes({"A": forever}, PAIR)


# a fresh exception per example (raising one object again would extend its old traceback)
EXCEPTIONS = st.sampled_from([(ValueError, "bad value"), (KeyError, "k"),
                              (ZeroDivisionError, "x"), (RuntimeError, "multi\nline"),
                              (IndexError, "i"), (TypeError, "t"),
                              (AttributeError, "a")]).map(lambda c: c[0](c[1]))


def _line_of(marker: str) -> int:
    lines = Path(THIS).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(marker)
                and "endswith" not in text)


def _raising_program(exc: BaseException, waits: int, nested: bool):
    def inner(node):
        for _ in range(waits):
            yield node.wait(1e-6)
        raise exc                                                # RAISE-INNER

    def program(node):
        if nested:
            yield from inner(node)
        for _ in range(waits):
            yield node.wait(1e-6)
        raise exc                                                # RAISE-OUTER

    return program


@FAST
@given(exc=EXCEPTIONS, waits=st.integers(0, 3), nested=st.booleans())
def test_generated_exceptions_in_node_programs_are_wrapped(exc, waits, nested):
    line = _line_of("# RAISE-INNER" if nested else "# RAISE-OUTER")
    with contract(f"exception {type(exc).__name__}"):
        with pytest.raises(NodeProgramError) as err:
            lower_nodes({"A": _raising_program(exc, waits, nested), "B": idle}, PAIR)
        message = one_line(err.value)
        assert isinstance(err.value, QsimDistError)
        assert err.value.__cause__ is exc
        assert "'A'" in message and type(exc).__name__ in message
        assert f"{THIS}:{line}" in message, (message, line)


def test_a_network_that_is_not_a_network():
    for network in ("examples/network_pair.toml", None, {"nodes": {}}):
        with contract(f"network {network!r}"):
            with pytest.raises(QsimDistError):
                lower_nodes({"A": idle}, network)


def test_programs_that_are_not_generator_functions():
    for programs in ({"A": 3}, {"A": lambda: None}, [idle], {"Z": idle}):
        with contract(f"programs {programs!r}"):
            with pytest.raises(ProgramError) as err:
                lower_nodes(programs, PAIR)
            one_line(err.value)


# ---- runs that never end -----------------------------------------------------------------------

def _forever(kind: str, dt: float):
    def a(node):
        q = node.qubit()
        while True:
            if kind == "wait":
                yield node.wait(dt)
            elif kind == "gates":                 # never yields at all
                node.gate("h", q)
            elif kind == "ping":
                yield node.send("B")
                yield node.recv("B")
            else:
                half = yield node.epr("B")
                node.free(half)

    def b(node):
        while True:
            if kind == "ping":
                yield node.recv("A")
                yield node.send("A")
            elif kind == "epr":
                half = yield node.epr("A")
                node.free(half)
            else:
                yield node.wait(dt)

    return {"A": a, "B": b}


@settings(FAST, max_examples=40)
@given(kind=st.sampled_from(["wait", "gates", "ping", "epr"]), dt=st.floats(1e-6, 1.0),
       max_events=st.integers(1, 400))
def test_generated_never_ending_programs_hit_max_events(kind, dt, max_events):
    with contract(f"forever {kind}"), _deadline(20):
        with pytest.raises(RunLimitError) as err:
            lower_nodes(_forever(kind, dt), PAIR, max_events=max_events)
        message = one_line(err.value)
        assert f"max_events = {max_events}" in message


@settings(FAST, max_examples=20)
@given(dt=st.floats(1.0, 1e6), max_time=st.floats(1.0, 1e3))
def test_generated_long_programs_hit_max_time(dt, max_time):
    with contract("max_time"), _deadline(20):
        with pytest.raises(RunLimitError) as err:
            lower_nodes(_forever("wait", dt), PAIR, max_time=max_time)
        assert "max_time" in one_line(err.value)


@contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging (the code before the fix runs such programs forever)."""
    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_default_caps_stop_a_never_ending_program():
    with contract("default cap"), _deadline(30):
        with pytest.raises(RunLimitError, match="max_time|max_events"):
            lower_nodes(_forever("wait", 1.0), PAIR)
    for bad in (0, -1, 2.5, "10", True):
        with contract(f"max_events={bad!r}"):
            with pytest.raises(ProgramError):
                lower_nodes({"A": idle}, PAIR, max_events=bad)
    for bad in (0.0, -1.0, math.nan, math.inf, "1"):
        with contract(f"max_time={bad!r}"):
            with pytest.raises(ProgramError):
                lower_nodes({"A": idle}, PAIR, max_time=bad)


def test_purification_rounds_are_bounded():
    # enough communication qubits that only the bound on rounds can refuse them
    many = network_from_dict({"nodes": {"A": {"data_qubits": 1, "comm_qubits": 2000},
                                        "B": {"data_qubits": 1, "comm_qubits": 2000}},
                              "links": [{"between": ["A", "B"]}]})
    for rounds in (11, 1000, -1, 1.5, "2"):
        with contract(f"purification {rounds!r}"):
            with pytest.raises(OptionError):
                Runtime(many, purification=("bbpssw", rounds))
    Runtime(many, purification=("bbpssw", 10))


# ---- distributed programs ------------------------------------------------------------------------

@FAST
@given(index=st.one_of(st.integers(max_value=-1), st.integers(min_value=2), st.just(True),
                       st.just(0.0), st.just("0")),
       op=st.sampled_from(["teleport", "remote", "local", "body"]))
def test_generated_distributed_program_indices(index, op):
    from qsim_dist.circuit import Instruction

    if op == "teleport":
        ops = [Teleport(index, "B")]
    elif op == "remote":
        ops = [RemoteGate(index, "B", ())]
    else:
        try:
            inst = Instruction("x", (index,))
        except QsimDistError:     # the circuit layer refuses it first: also fine
            return
        ops = [LocalGate(inst)] if op == "local" else [RemoteGate(0, "B", (inst,))]
    program = DistributedProgram(2, 0, ("A", "B"), ops)
    with contract(f"program {op}"):
        with pytest.raises(ProgramError) as err:
            program.validate(PAIR)
        one_line(err.value)
