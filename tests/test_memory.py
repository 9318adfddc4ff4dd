"""The memory limits of a job (qsim_dist.memory) and the one up-front check every backend makes
before it allocates: fake cgroup v1/v2 trees, the message, and runs that do not fit refused
with a BackendError before any state is allocated (never a MemoryError, an OOM kill or
numpy's "Maximum allowed dimension exceeded")."""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsim_dist import Circuit, Condition
from qsim_dist import library as lib
from qsim_dist import memory
from qsim_dist import noise as N
from qsim_dist.backends import get_backend, planning
from qsim_dist.backends.reference import ReferenceState, density_matrix
from qsim_dist.errors import BackendError, OptionError

MiB, GiB = 1 << 20, 1 << 30
V1_NONE = 9223372036854771712  # cgroup v1's "no limit"

# ---- fake cgroup trees --------------------------------------------------------------------------

names = st.text("abcdefgh0123456789._-", min_size=1, max_size=8).filter(
    lambda s: s not in (".", ".."))
# what a level's limit file holds: a number, "max" (v2), v1's sentinel, garbage, or no file
limit_values = st.one_of(st.integers(0, 1 << 40), st.just("max"), st.just(str(V1_NONE)),
                         st.just("garbage"), st.none())
levels = st.lists(st.tuples(limit_values, st.integers(0, 1 << 40), st.integers(0, 1 << 40)),
                  min_size=1, max_size=5)


def _write_tree(root: Path, path: list[str], spec, limit_file, usage_file, inactive_key):
    """Levels root, root/path[0], ... with spec[i] = (limit or None, usage, inactive); the
    room the deepest-to-root walk must find (None: no limit)."""
    expected = None
    for depth, (limit, usage, inactive) in enumerate(spec):
        d = root.joinpath(*path[:depth])
        d.mkdir(parents=True, exist_ok=True)
        if limit is None:
            continue
        (d / limit_file).write_text(f"{limit}\n")
        (d / usage_file).write_text(f"{usage}\n")
        (d / "memory.stat").write_text(f"cache 1\n{inactive_key} {inactive}\nrss 2\n")
        if isinstance(limit, int):
            room = max(limit - max(usage - inactive, 0), 0)
            expected = room if expected is None else min(expected, room)
    return expected


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=4, max_size=4), levels, levels, st.booleans(), st.booleans())
def test_cgroup_limit_is_the_smallest_room_over_both_hierarchies(path, v2, v1, has_v2, has_v1):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc, root = tmp / "proc", tmp / "cgroup"
        (proc / "self").mkdir(parents=True)
        lines, want = ["7:cpu,cpuacct:/x"], []
        if has_v2:
            lines.append("0::/" + "/".join(path[:len(v2) - 1]))
            want.append(_write_tree(root, path, v2, "memory.max", "memory.current",
                                    "inactive_file"))
        if has_v1:
            lines.append("4:memory:/" + "/".join(path[:len(v1) - 1]))
            want.append(_write_tree(root / "memory", path, v1, "memory.limit_in_bytes",
                                    "memory.usage_in_bytes", "total_inactive_file"))
        (proc / "self" / "cgroup").write_text("\n".join(lines) + "\n")
        want = [w for w in want if w is not None]
        assert memory.cgroup_limit(proc, root) == (min(want) if want else None)


def test_cgroup_in_a_container_and_missing_files(tmp_path):
    """In a container without a cgroup namespace the process's path does not exist under the
    mount (which is the container's own cgroup): the limit at the mount counts."""
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("0::/kubepods/pod1/abc\n")
    assert memory.cgroup_limit(proc, root) is None  # no tree at all
    root.mkdir()
    (root / "memory.max").write_text("2147483648\n")
    assert memory.cgroup_limit(proc, root) == 2 * GiB  # no memory.current: nothing used
    (root / "memory.current").write_text(str(512 * MiB))
    assert memory.cgroup_limit(proc, root) == 2 * GiB - 512 * MiB
    (root / "memory.max").write_text("max\n")
    assert memory.cgroup_limit(proc, root) is None
    assert memory.cgroup_limit(tmp_path / "nowhere", root) is None  # no /proc/self/cgroup


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 1 << 50), st.one_of(st.none(), st.integers(0, 1 << 50)))
def test_available_bytes_is_the_smallest_limit(mem_available_kib, cgroup_room):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proc, root = tmp / "proc", tmp / "cgroup"
        (proc / "self").mkdir(parents=True)
        (proc / "meminfo").write_text(f"MemTotal: 99 kB\nMemAvailable: {mem_available_kib} kB\n")
        (proc / "self" / "cgroup").write_text("0::/job\n")
        (root / "job").mkdir(parents=True)
        if cgroup_room is not None:
            (root / "job" / "memory.max").write_text(str(cgroup_room))
        want = min(x for x in (mem_available_kib * 1024, cgroup_room) if x is not None)
        assert memory.host_available(proc) == mem_available_kib * 1024
        got = memory.available_bytes(proc, root)
        assert got <= want
        if memory.address_space_available(proc) is None:  # (no ulimit -v)
            assert got == want


def test_the_real_limits_are_read():
    assert 0 < memory.available_bytes() <= memory.host_available()


def test_message_with_numbers_and_hint():
    with pytest.raises(BackendError) as err:
        memory.check_fits(8 * GiB, "a 29-qubit state", available=2 * GiB)
    assert str(err.value) == "a 29-qubit state needs 8.0 GiB, the job may use 2.0 GiB"
    with pytest.raises(BackendError, match=r"needs 8\.0 GiB, the job may use 2\.0 GiB "
                                           r"\(precision single halves it\)$"):
        memory.check_fits(8 * GiB, "x", "precision single halves it", available=2 * GiB)
    memory.check_fits(2 * GiB, "x", available=2 * GiB)  # fits exactly
    assert memory.format_bytes(1 << 74) == "2^74 B" and memory.format_bytes(1023) == "1023 B"
    assert memory.precision_hint_for("double") and not memory.precision_hint_for("single")
    with memory.precision_hint(False):
        assert memory.precision_hint_for("double") is None
    assert memory.precision_hint_for("double")


# ---- every backend refuses before it allocates --------------------------------------------------

LIMIT = 4 * MiB  # what the job may use in the tests below


@pytest.fixture
def tight(monkeypatch):
    """A job that may use 4 MiB; allocating a state of more than 2^16 amplitudes fails the
    test (the check must come first)."""
    monkeypatch.setattr(memory, "available_bytes", lambda *a, **k: LIMIT)
    monkeypatch.setattr(memory, "available_for", lambda kernels: LIMIT)
    from qsim_dist.backends.distributed import DistributedState
    from qsim_dist.backends.statevector import FusedState

    for cls in (ReferenceState, FusedState, DistributedState):
        init = cls.__init__

        def guarded(self, *args, _init=init, **kwargs):
            n = next(a for a in args if isinstance(a, int) and not isinstance(a, bool))
            assert n <= 16, f"a {n}-qubit state was allocated"
            _init(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", guarded)


BACKENDS = [("reference", {}), ("statevector", {"kernels": "cpu"}),
            ("distributed", {"kernels": "cpu"})]


def _circuit(n, dynamic):
    c = Circuit(n, n)
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
    if dynamic:
        c.measure(0, 0)
        c.add("x", 1, condition=Condition((0,), 1))
    c.measure_all()
    return c


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # (the limit is fixed)
@given(st.sampled_from(BACKENDS), st.integers(20, 90),
       st.sampled_from(["static", "dynamic", "noisy", "pauli"]),
       st.sampled_from([None, "single", "double"]), st.booleans())
def test_a_run_that_does_not_fit_is_refused_before_allocating(tight, backend, n, kind, precision,
                                                              save_state):
    name, options = backend
    sim = get_backend(name, **options)
    model = None
    if kind == "noisy":
        model = N.NoiseModel().add_gate_error(N.amplitude_damping(0.1), "h")
    elif kind == "pauli":
        model = N.NoiseModel().add_gate_error(N.depolarizing(0.1), "h")
    with pytest.raises(BackendError, match=rf"{n}-qubit state \(2\^{n} amplitudes.* needs .*, "
                                           rf"the job may use 4\.0 MiB"):
        sim.run(_circuit(n, kind == "dynamic"), shots=10, seed=1, precision=precision,
                noise=model, save_state=save_state)


@pytest.mark.parametrize("name, options", BACKENDS)
def test_the_state_api_refuses_too(tight, name, options):
    sim = get_backend(name, **options)
    for n in (30, 70):
        # (the sharded state keeps its per-rank wording, which the MPI tests check)
        words = "needs .* per rank" if name == "distributed" else rf"2\^{n} amplitudes.*needs"
        with pytest.raises(BackendError, match=words):
            sim.statevector(lib.ghz(n))
    with pytest.raises(BackendError, match="needs"):
        sim.probabilities(lib.ghz(30))


def test_the_density_matrix_refuses(tight):
    with pytest.raises(BackendError, match=r"density matrix .*needs .* the job may use"):
        density_matrix(lib.ghz(12))
    assert density_matrix(lib.ghz(3)).shape == (8, 8)


def test_small_runs_still_fit(tight):
    for name, options in BACKENDS:
        r = get_backend(name, **options).run(lib.ghz(10, measure=True), shots=100, seed=1)
        assert set(r.counts) == {"0" * 10, "1" * 10}


def test_the_precision_hint_only_where_single_fits_and_the_caller_can_choose(monkeypatch):
    sim = get_backend("reference")
    state = 16 << 17  # a 17-qubit state in double; in single it is half
    monkeypatch.setattr(memory, "available_bytes", lambda *a, **k: 3 * state)
    with pytest.raises(BackendError, match=r"\(precision single halves it\)$"):
        sim.run(lib.ghz(17, measure=True), shots=1, precision="double")
    sim.run(lib.ghz(17, measure=True), shots=1, precision="single")  # as the hint says
    with pytest.raises(BackendError) as err:  # already single: no hint
        sim.run(lib.ghz(18, measure=True), shots=1, precision="single")
    assert "halves" not in str(err.value)
    with memory.precision_hint(False), pytest.raises(BackendError) as err:
        sim.run(lib.ghz(17, measure=True), shots=1, precision="double")
    assert "halves" not in str(err.value)
    with pytest.raises(BackendError) as err:  # single would not fit either: no hint
        sim.run(lib.ghz(19, measure=True), shots=1, precision="double")
    assert "halves" not in str(err.value)


def test_shots_beyond_the_engine():
    sim = get_backend("statevector", kernels="cpu")
    for shots in (1 << 63, 10 ** 23, -1, 2.0, True):
        with pytest.raises(OptionError, match="shots"):
            sim.run(lib.ghz(2, measure=True), shots=shots)
    # within int64 but not within memory: the sampling arrays are counted
    with pytest.raises(BackendError, match=r"\d+ shots needs"):
        sim.run(lib.ghz(2, measure=True), shots=(1 << 63) - 1)


def test_a_compacted_run_allocates_only_its_live_qubits(tight, monkeypatch):
    """60 qubits, at most a few live: fits in 4 MiB, and no state wider than the plan's."""
    widths = []
    add = ReferenceState.add_qubit

    def spy(self, slot, value):
        add(self, slot, value)
        widths.append(self.num_qubits)

    monkeypatch.setattr(ReferenceState, "add_qubit", spy)
    n = 60
    c = Circuit(n, n)
    c.add("h", 0)
    for q in range(n - 1):
        c.add("cx", q, q + 1)
        c.measure(q, q)
        c.add("x", q, condition=Condition((q,), 1))  # measured and freed: leaves
    c.measure(n - 1, n - 1)
    sim = get_backend("reference")
    sim.compaction = True
    instructions, readout, first = planning.dynamic_split(c, None)
    live = sorted({q for i in instructions[:first] for q in i.qubits})
    _, _, widest = planning.plan_steps(None, instructions[first:], readout, live, n)
    assert widest <= 3
    counts = sim.run(c, shots=200, seed=2).counts
    assert set(counts) == {"0" * n, "1" * n}
    assert widths and max(widths) <= widest
    assert get_backend("statevector", kernels="cpu").run(c, shots=200, seed=2).counts == counts


def test_the_cli_says_it_in_one_line(tight, tmp_path, capsys):
    from qsim_dist.cli import main

    path = tmp_path / "big.qasm"
    path.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[30];\ncreg c[30];\nh q[0];\n'
                    "measure q -> c;\n")
    out = tmp_path / "out.h5"
    for backend in ("statevector", "reference"):
        rc = main(["run", str(path), "--backend", backend, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "needs" in err[0] and "may use 4.0 MiB" in err[0]
        assert "Traceback" not in err[0] and not out.exists()
