"""Generated wrong inputs to the public API, the OpenQASM reader and noise files.

Contract (issue 11): a wrong value raises a :class:`QsimDistError` subclass with a one-line message
(never a raw TypeError/ValueError/IndexError/..., never silently coerced or accepted); through the
CLI, exit status 2 and exactly one line on stderr.

Run with ``QSIM_VALIDATION_TALLY=FILE`` to count instead of assert: every generated input appends
``ok`` or ``FAIL <what>`` to FILE and the tests pass (how the count of inputs that broke the
contract before the fix was made).
"""

from __future__ import annotations

import math
import os
import signal
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qsim_dist import Circuit, Condition, Instruction, QsimDistError
from qsim_dist import gates as G
from qsim_dist import library as L
from qsim_dist import noise as N
from qsim_dist import observables as O
from qsim_dist.backends.reference import ReferenceBackend
from qsim_dist.cli import main
from qsim_dist.io import qasm

TALLY = os.environ.get("QSIM_VALIDATION_TALLY")
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class _Slow(Exception):
    pass


def _alarm(*_):
    raise _Slow


def refused(call, what: str, error: type[Exception] = QsimDistError, forbid: str = "") -> None:
    """Assert that ``call()`` raises ``error`` (a QsimDistError subclass) with one line (not
    containing ``forbid``). Tallying, a call that takes over 5 s counts as a failure (the old
    code runs for minutes on some inputs)."""
    if TALLY:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(5)
    try:
        result = call()
    except _Slow:
        ok, why = False, "still running after 5 s"
    except error as exc:
        text = str(exc)
        ok = "\n" not in text and text != "" and not (forbid and forbid in text)
        why = f"message {text[:100]!r}"
    except Exception as exc:  # noqa: BLE001 - anything else breaks the contract
        ok, why = False, f"raw {type(exc).__name__}: {str(exc)[:100]}"
    else:
        ok, why = False, f"accepted, returned {type(result).__name__}"
    finally:
        if TALLY:
            signal.alarm(0)
    if TALLY:
        with open(TALLY, "a") as fh:
            fh.write("ok\n" if ok else f"FAIL {what[:100]}: {why}".replace("\n", " ") + "\n")
        return
    assert ok, f"{what}: {why}"


# ---- bad values ------------------------------------------------------------------------------

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, np.float64("nan"),
                              np.float32("inf"), 10 ** 400, -(10 ** 309)])
NOT_A_NUMBER = st.sampled_from(["0.5", "1", None, [0.5], (), 1j, 1 + 2j, True, False, object()])
BAD_REAL = NON_FINITE | NOT_A_NUMBER
NOT_AN_INTEGER = (st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda x: not (math.isfinite(x) and x == int(x))) | st.sampled_from(
    ["0", "1", None, True, False, 1.0, 2.0, np.float64(1.0), 1j, [0], (1,)]))


def bad_index(size: int):
    """Not an index of ``range(size)``: wrong types, negatives, too large."""
    return NOT_AN_INTEGER | st.integers(max_value=-1) | st.integers(min_value=size)


BAD_COUNT = NOT_AN_INTEGER | st.integers(max_value=-1)
BAD_PROBABILITY = BAD_REAL | st.floats(max_value=-1e-9, allow_nan=False) | st.floats(
    min_value=1.0 + 1e-6, allow_nan=False)

BACKEND = ReferenceBackend()


def small_circuit(n: int) -> Circuit:
    c = Circuit(n)
    for q in range(n):
        c.add("h", q)
    return c


# ---- the Python API --------------------------------------------------------------------------

@SETTINGS
@given(value=BAD_COUNT)
def test_circuit_sizes(value):
    refused(lambda: Circuit(value), f"Circuit({value!r})")
    refused(lambda: Circuit(2, value), f"Circuit(2, {value!r})")


@SETTINGS
@given(n=st.integers(1, 4), data=st.data())
def test_qubits_and_clbits(n, data):
    q = data.draw(bad_index(n))
    refused(lambda: Circuit(n).add("h", q), f"Circuit({n}).add('h', {q!r})")
    refused(lambda: Circuit(n, n).measure(0, q), f"measure(0, {q!r}) on {n} clbits")
    refused(lambda: Circuit(n).append(Instruction("x", (q,))), f"Instruction('x', ({q!r},))")
    refused(lambda: Circuit(n, 1).add("x", 0, condition=Condition((q,), 1)),
            f"Condition(({q!r},), 1)")


@SETTINGS
@given(name=st.sampled_from(["rz", "rx", "u3", "cp", "rzz", "cu"]), value=BAD_REAL,
       data=st.data())
def test_gate_parameters(name, value, data):
    spec = G.GATES[name]
    slot = data.draw(st.integers(0, spec.num_params - 1))
    params = [0.1] * spec.num_params
    params[slot] = value
    qubits = tuple(range(spec.num_qubits))
    refused(lambda: Circuit(spec.num_qubits).add(name, *qubits, params=params),
            f"add({name!r}, params={params!r})")
    refused(lambda: Instruction(name, qubits, tuple(params)), f"Instruction({name}, {params!r})")
    refused(lambda: G.gate_matrix(name, params), f"gate_matrix({name!r}, {params!r})")


@SETTINGS
@given(width=st.integers(1, 4), data=st.data())
def test_condition_values(width, data):
    value = data.draw(st.integers(min_value=1 << width) | st.integers(max_value=-1)
                      | NOT_AN_INTEGER)
    refused(lambda: Condition(tuple(range(width)), value), f"Condition({width} bits, {value!r})")


@SETTINGS
@given(call=st.sampled_from([
    ("ghz", lambda v: L.ghz(v)), ("qft", lambda v: L.qft(v)),
    ("random_circuit n", lambda v: L.random_circuit(v, 2)),
    ("random_circuit depth", lambda v: L.random_circuit(2, v)),
    ("random_circuit seed", lambda v: L.random_circuit(2, 1, seed=v)),
    ("random_gate_circuit", lambda v: L.random_gate_circuit(2, v)),
    ("qpe", lambda v: L.qpe(v, 0.25)), ("cuccaro_adder", lambda v: L.cuccaro_adder(v, 1, 1)),
    ("grover", lambda v: L.grover(v, 0)),
    ("cat_entangler_chain", lambda v: L.cat_entangler_chain(v, 2)),
]), value=BAD_COUNT)
def test_library_sizes(call, value):
    name, make = call
    refused(lambda: make(value), f"{name}({value!r})")


@SETTINGS
@given(value=BAD_REAL)
def test_library_angles(value):
    refused(lambda: L.qpe(2, value), f"qpe(2, {value!r})")
    refused(lambda: L.qaoa_maxcut([(0, 1)], 2, [value], [0.1]), f"qaoa gamma {value!r}")


def test_library_hand_picked():
    refused(lambda: L.random_circuit(2, 1, entangler="cy"), "random_circuit entangler='cy'")
    refused(lambda: L.random_gate_circuit(2, 3, names=["nope"]), "random_gate_circuit names")
    refused(lambda: L.grover(2, 4), "grover marked 4 on 2 qubits")
    refused(lambda: L.grover(1, 0), "grover on 1 qubit")
    refused(lambda: L.qaoa_maxcut([(0, 0)], 2, [0.1], [0.1]), "qaoa edge (0, 0)")
    refused(lambda: L.qaoa_maxcut([(0, 1)], 2, [0.1, 0.2], [0.1]), "qaoa gammas/betas lengths")


OBSERVABLES = st.sampled_from([5, None, 1.5, b"ZZ", [(1.0,)], [("Z", 1.0)], [(1.0, 5)],
                               "ZZZ", "Q0", "X0 X0", "Z7", [(1.0, "ZZ", 3)]])


@SETTINGS
@given(n=st.integers(1, 3), data=st.data())
def test_backend_public_methods(n, data):
    c = small_circuit(n)
    index = data.draw(bad_index(1 << n))
    refused(lambda: BACKEND.amplitudes(c, [index]), f"amplitudes(c, [{index!r}]) on {n} qubits")
    qubit = data.draw(bad_index(n))
    refused(lambda: BACKEND.probabilities(c, [qubit]), f"probabilities(c, [{qubit!r}])")
    refused(lambda: BACKEND.probabilities(c, [0, 0]), "probabilities(c, [0, 0])")
    coeff = data.draw(BAD_REAL.filter(lambda v: not isinstance(v, complex)))
    refused(lambda: BACKEND.expectation(c, [(coeff, "Z" * n)]), f"expectation coeff {coeff!r}")
    obs = data.draw(OBSERVABLES)
    assume(obs != "Z" * n)
    refused(lambda: BACKEND.expectation(c, obs), f"expectation(c, {obs!r}) on {n} qubits")
    not_a_circuit = data.draw(st.sampled_from(["c", None, 3, [c], c.instructions]))
    for method in ("statevector", "final_state"):
        refused(lambda: getattr(BACKEND, method)(not_a_circuit), f"{method}({not_a_circuit!r})")
    if not isinstance(index, (list, tuple)):
        refused(lambda: BACKEND.amplitudes(c, index), f"amplitudes(c, {index!r}) (not a list)")


# ---- noise: the API and noise files ----------------------------------------------------------

@SETTINGS
@given(make=st.sampled_from([
    # depolarizing goes up to 4/3: values above 1 doubled to leave its range
    ("depolarizing", lambda p: N.depolarizing(2 * p if isinstance(p, float) and p > 1 else p)),
    ("bit_flip", N.bit_flip), ("phase_flip", N.phase_flip),
    ("amplitude_damping", N.amplitude_damping), ("phase_damping", N.phase_damping),
    ("readout p01", lambda p: N.ReadoutError.from_flips(p, 0.0)),
    ("pauli", lambda p: N.pauli_channel({"X": p})),
    ("thermal time", lambda p: N.thermal_relaxation(1.0, 1.0, p if not isinstance(p, float)
                                                     or not 0 <= p < math.inf else -1.0)),
]), p=BAD_PROBABILITY)
def test_noise_numbers(make, p):
    name, fn = make
    refused(lambda: fn(p), f"{name}({p!r})", N.NoiseModelError)


@SETTINGS
@given(value=NON_FINITE, where=st.integers(0, 3))
def test_noise_matrices(value, where):
    k = [[1.0, 0.0], [0.0, 1.0]]
    k[where // 2][where % 2] = value
    refused(lambda: N.kraus([k]), f"kraus with {value!r}", N.NoiseModelError)
    refused(lambda: N.ReadoutError(k), f"ReadoutError with {value!r}", N.NoiseModelError)


@SETTINGS
@given(n=st.integers(1, 3), data=st.data())
def test_noise_rule_qubits(n, data):
    q = data.draw(NOT_AN_INTEGER | st.integers(max_value=-1))
    model = N.NoiseModel()
    refused(lambda: model.add_gate_error(N.depolarizing(0.1), "x", [q]), f"gate error qubit {q!r}",
            N.NoiseModelError)
    refused(lambda: model.add_readout_error(N.ReadoutError.from_flips(0.1, 0.1), [q]),
            f"readout qubit {q!r}", N.NoiseModelError)
    missing = data.draw(st.integers(n, n + 50))
    rule = data.draw(st.sampled_from(["gate", "readout", "idle"]))
    model = N.NoiseModel()
    if rule == "gate":
        model.add_gate_error(N.depolarizing(0.1), "h", [missing])
    elif rule == "readout":
        model.add_readout_error(N.ReadoutError.from_flips(0.1, 0.1), [missing])
    else:
        model.add_idle_error(N.depolarizing(0.1), [missing])
    refused(lambda: model.lower(small_circuit(n)), f"{rule} rule on qubit {missing} of {n}",
            N.NoiseModelError)


TOML_BAD_NUMBERS = ["nan", "inf", "-inf", "-0.5", "1.5", '"0.1"', "true", "[0.1]", "1e400"]
NOISE_TEMPLATES = [
    '[[gate]]\ngates = "x"\nchannel = "bit_flip"\np = {v}\n',
    '[[gate]]\ngates = "cx"\nchannel = "depolarizing"\np = {v}\n',
    '[[gate]]\ngates = "x"\nchannel = "pauli"\nprobabilities = {{ X = {v} }}\n',
    '[[gate]]\ngates = "h"\nchannel = "amplitude_damping"\ngamma = {v}\n',
    '[[gate]]\ngates = "id"\nchannel = "thermal_relaxation"\nt1 = 1.0\nt2 = 1.0\ntime = {v}\n',
    '[[gate]]\ngates = "x"\nchannel = "kraus"\nkraus = [{{ real = [[{v}, 0], [0, 1]] }}]\n',
    '[[readout]]\np01 = {v}\np10 = 0.1\n',
    '[[readout]]\nmatrix = [[{v}, 0.0], [0.0, 1.0]]\n',
    '[durations]\ncx = {v}\n',
    '[[idle]]\nchannel = "depolarizing"\np = {v}\n',
    '[[gate]]\ngates = "x"\nqubits = [{v}]\nchannel = "bit_flip"\np = 0.1\n',
]


@SETTINGS
@given(template=st.sampled_from(NOISE_TEMPLATES), value=st.sampled_from(TOML_BAD_NUMBERS))
def test_noise_files(tmp_path_factory, template, value):
    if "time" in template or "durations" in template or "qubits" in template:
        assume(value not in ("1.5",))  # in range there
    path = tmp_path_factory.mktemp("noise") / "bad.toml"
    path.write_text(template.format(v=value))
    refused(lambda: N.load_noise_model(path), f"noise file {template.format(v=value)!r}",
            N.NoiseModelError)


# ---- OpenQASM ----------------------------------------------------------------------------------

HEADER = {2: 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n',
          3: 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nbit[3] c;\n'}

OVERFLOW = st.one_of(
    st.integers(309, 2000).map(lambda e: f"1e{e}"),
    st.integers(309, 2000).map(lambda e: f"-2.5e{e}"),
    st.integers(2, 10 ** 6).map(lambda k: f"1e308*{k}"),
    st.integers(2, 100).map(lambda k: f"-1e308*{k}"),
    st.just("1e308*10 - 1e308*10"),  # inf - inf = nan
    st.integers(710, 5000).map(lambda k: f"exp({k})"),
    st.integers(2, 50).map(lambda k: f"(1e300)**{k}"),
    st.just("1e-320/1e-320*0 + 1e308*1e308"),
)


@SETTINGS
@given(version=st.sampled_from([2, 3]), expr=OVERFLOW,
       where=st.sampled_from(["gate", "definition", "const"]))
def test_qasm_non_finite_parameters(version, expr, where):
    if where == "const" and version == 2:
        where = "gate"
    body = {"gate": f"rz({expr}) q[0];\n",
            "definition": f"gate g(a) x {{ rz(a) x; }}\ng({expr}) q[1];\n",
            "const": f"const float c0 = {expr};\nrz(c0) q[0];\n"}[where]
    text = HEADER[version] + body
    refused(lambda: qasm.loads(text), f"QASM {version} {body!r}", qasm.QasmError)


INDEXED = {2: ["h q[{i}];", "cx q[0], q[{i}];", "measure q[{i}] -> c[0];",
               "measure q[0] -> c[{i}];", "reset q[{i}];", "if(c==1) x q[{i}];"],
           3: ["h q[{i}];", "cx q[0], q[{i}];", "c[0] = measure q[{i}];",
               "c[{i}] = measure q[0];", "reset q[{i}];", "if (c[{i}]) x q[0];"]}


@SETTINGS
@given(version=st.sampled_from([2, 3]), data=st.data())
def test_qasm_indices(version, data):
    stmt = data.draw(st.sampled_from(INDEXED[version]))
    low = 0 if version == 2 else -3  # OpenQASM 3 counts -3..-1 from the end
    i = data.draw(st.integers(max_value=low - 1) | st.integers(min_value=3))
    text = HEADER[version] + stmt.format(i=i) + "\n"
    refused(lambda: qasm.loads(text), f"QASM {version} {stmt.format(i=i)!r}", qasm.QasmError)


@SETTINGS
@given(version=st.sampled_from([2, 3]), depth=st.integers(65, 5000),
       kind=st.sampled_from(["parens", "minus", "brackets"]))
def test_qasm_deep_expressions(version, depth, kind):
    expr = {"parens": "(" * depth + "1" + ")" * depth, "minus": "-" * depth + "1",
            "brackets": "1"}[kind]
    stmt = f"h q[{'(' * depth}0{')' * depth}];" if kind == "brackets" else f"rz({expr}) q[0];"
    text = HEADER[version] + stmt + "\n"
    t0 = time.perf_counter()
    refused(lambda: qasm.loads(text), f"QASM {version} {kind} nested {depth}", qasm.QasmError,
            forbid="RecursionError")
    assert TALLY or time.perf_counter() - t0 < 5


def nested_gates(depth: int, fanout: int, version: int = 2, use: bool = True,
                 pow_k: int | None = None) -> str:
    """``depth`` definitions, each calling the previous one ``fanout`` times: fanout^depth."""
    lines = [HEADER[version].rstrip("\n"), "gate g0 a { x a; }"]
    for k in range(1, depth + 1):
        call = f"pow({pow_k}) @ g{k - 1} a;" if pow_k else f"g{k - 1} a;"
        lines.append(f"gate g{k} a {{ " + " ".join([call] * fanout) + " }")
    if use:
        lines.append(f"g{depth} q[0];")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(depth=st.integers(3, 40), fanout=st.integers(2, 6), version=st.sampled_from([2, 3]),
       limit=st.integers(10, 5000))
def test_qasm_exponential_nesting(depth, fanout, version, limit):
    assume(fanout ** depth > 2 * limit)
    text = nested_gates(depth, fanout, version)
    t0 = time.perf_counter()
    refused(lambda: qasm.loads(text, max_instructions=limit),
            f"QASM {version}: {fanout}^{depth} nested gates, limit {limit}", qasm.QasmError)
    assert TALLY or time.perf_counter() - t0 < 5


def test_qasm_nesting_within_the_limit_is_unchanged():
    c = qasm.loads(nested_gates(6, 2), max_instructions=1000)
    assert len(c) == 64 and all(i.name == "x" for i in c)
    c = qasm.loads(nested_gates(3, 2, version=3, pow_k=3), max_instructions=1000)
    assert len(c) == 6 ** 3
    with pytest.raises(qasm.QasmError, match="max_instructions"):
        qasm.loads(nested_gates(6, 2), max_instructions=63)


def test_qasm_default_limit_refuses_at_once():
    """30 lines that expand to 2^30 instructions: refused by the default limit in seconds."""
    t0 = time.perf_counter()
    refused(lambda: qasm.loads(nested_gates(30, 2)), "2^30 nested gates, default limit",
            qasm.QasmError)
    refused(lambda: qasm.loads(HEADER[3] + "pow(1000000000) @ x q[0];\n"), "pow(1e9) @ x",
            qasm.QasmError)
    refused(lambda: qasm.loads(HEADER[3] + "qubit[1000000000000] r;\nh r;\n"), "h on 1e12 qubits",
            qasm.QasmError)
    assert TALLY or time.perf_counter() - t0 < 10


def test_qasm_hand_picked():
    refused(lambda: qasm.loads(HEADER[2] + "if(c==8) x q[0];\n"), "condition 8 on 3 bits",
            qasm.QasmError)
    refused(lambda: qasm.loads(HEADER[3] + "qubit[1e400] r;\n"), "register of 1e400",
            qasm.QasmError)
    refused(lambda: qasm.loads(5), "loads(5)", qasm.QasmError)
    refused(lambda: qasm.loads(HEADER[2] + "rz(" + "+".join(["1"] * 5000) + ") q[0];\n"),
            "5000-term sum", qasm.QasmError, forbid="RecursionError")
    # valid input is unchanged: OpenQASM 3 negative indices count from the end
    c = qasm.loads(HEADER[3] + "x q[-1];\n")
    assert c.instructions[0].qubits == (2,)


CLI_FILES = [
    ("rz(1e400) q[0];", 2), ("rz(1e308*10) q[0];", 2), ("h q[-1];", 2), ("h q[3];", 3),
    ("rz(" + "(" * 5000 + "1" + ")" * 5000 + ") q[0];", 2),
]


def cli_refuses(capsys, argv: list[str], what: str, out=None) -> None:
    """``main(argv)``: exit 2, one stderr line, no traceback, nothing at ``out``."""
    if TALLY:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(20)
    try:
        rc = main(argv)
    except _Slow:
        rc = "still running after 20 s"
    finally:
        if TALLY:
            signal.alarm(0)
    err = capsys.readouterr().err
    ok = rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err \
        and "RecursionError" not in err and (out is None or not out.exists())
    if TALLY:
        with open(TALLY, "a") as fh:
            fh.write("ok\n" if ok else f"FAIL cli {what}: rc {rc}, {err[:80]!r}".replace(
                "\n", " ") + "\n")
        return
    assert ok, (what, rc, err)


@pytest.mark.parametrize("stmt, version", CLI_FILES, ids=[s[:20] for s, _ in CLI_FILES])
def test_cli_refuses_in_one_line(tmp_path, capsys, stmt, version):
    path = tmp_path / "bad.qasm"
    path.write_text(HEADER[version] + stmt + "\n")
    out = tmp_path / "out.h5"
    cli_refuses(capsys, ["run", str(path), "--shots", "10", "--backend", "reference", "--out",
                         str(out)], stmt[:30], out)


def test_cli_exponential_file(tmp_path, capsys):
    path = tmp_path / "nested.qasm"
    path.write_text(nested_gates(30, 2))
    t0 = time.perf_counter()
    cli_refuses(capsys, ["run", str(path), "--shots", "10", "--backend", "reference"],
                "30 nested definitions")
    assert TALLY or time.perf_counter() - t0 < 20


@pytest.mark.parametrize("rule", ['[[gate]]\ngates = "h"\nchannel = "bit_flip"\np = nan\n',
                                  '[[readout]]\np01 = inf\np10 = 0.1\n',
                                  '[[gate]]\ngates = "h"\nqubits = [7]\nchannel = "bit_flip"\n'
                                  'p = 0.1\n'])
def test_cli_bad_noise_file(tmp_path, capsys, rule):
    circuit = tmp_path / "c.qasm"
    circuit.write_text(HEADER[2] + "h q[0];\nmeasure q -> c;\n")
    noise = tmp_path / "noise.toml"
    noise.write_text(rule)
    out = tmp_path / "out.h5"
    cli_refuses(capsys, ["run", str(circuit), "--shots", "10", "--backend", "reference",
                         "--noise", str(noise), "--out", str(out)], rule.split("\n")[-2], out)


# ---- the mechanism itself --------------------------------------------------------------------

def test_validation_functions():
    from qsim_dist import validation as V
    from qsim_dist.errors import OptionError

    assert V.index(np.int64(2), 3, "q") == 2 and type(V.index(np.int64(2), 3, "q")) is int
    assert V.finite(np.float32(0.5), "x") == 0.5 and V.probability(1, "p") == 1.0
    assert V.count(0, "n") == 0 and V.positive(1e-300, "t") == 1e-300
    assert V.non_negative(0, "t") == 0.0 and V.positive_time(2, "t") == 2.0
    for call in (lambda: V.index(-1, 3, "qubit"), lambda: V.index(True, 3, "qubit"),
                 lambda: V.count(2.0, "shots"), lambda: V.finite(math.nan, "angle"),
                 lambda: V.probability(1.5, "p"), lambda: V.positive(0, "time"),
                 lambda: V.positive_time(math.inf, "time"), lambda: V.non_negative(-1, "t"),
                 lambda: V.indices([0, 0], 2, "qubits"), lambda: V.indices(1, 2, "qubits")):
        with pytest.raises(OptionError) as err:
            call()
        assert "\n" not in str(err.value)
    with pytest.raises(qasm.QasmError, match="angle must be a finite real number, got nan"):
        V.finite(math.nan, "angle", qasm.QasmError)
    # an integer past Python's str() digit limit still gives a message, not a ValueError
    refused(lambda: Circuit(1).add("rz", 0, params=[10 ** 5000]), "rz(10**5000)")
    refused(lambda: N.bit_flip(-(10 ** 5000)), "bit_flip(-10**5000)", N.NoiseModelError)
