"""The simulated QPU as a workload-manager resource (qsim_dist.resource): the QRMI lifecycle,
tasks as separate runs (one process or mpiexec), their results, failures and stops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsim_dist.resource import QPUResource, ResourceError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def wait(qpu, task, timeout=120):
    t0 = time.time()
    while qpu.task_status(task) in ("queued", "running"):
        assert time.time() - t0 < timeout, "the task did not finish"
        time.sleep(0.05)
    return qpu.task_status(task)


def test_a_task_runs_to_its_results(tmp_path):
    from qsim_dist.io.hdf5 import load_result

    qpu = QPUResource(workdir=tmp_path)
    token = qpu.acquire()
    task = qpu.task_start({"circuit": BELL, "shots": 2000, "seed": 3})
    assert wait(qpu, task) == "completed"
    result = qpu.task_result(task)
    assert set(result["counts"]) == {"00", "11"} and sum(result["counts"].values()) == 2000
    assert load_result(result["results_file"]).counts == result["counts"]
    again = qpu.task_start({"circuit": BELL, "shots": 2000, "seed": 3})
    assert wait(qpu, again) == "completed"
    assert qpu.task_result(again)["counts"] == result["counts"]   # one seed, one answer
    qpu.release(token)


def test_a_failing_task_reports_its_one_line(tmp_path):
    qpu = QPUResource(workdir=tmp_path)
    task = qpu.task_start("OPENQASM 3.0;\nqubit[2] q;\nfoo q[0];\n")
    assert wait(qpu, task) == "failed"
    error = qpu.task_error(task)
    assert error.startswith("qsim-dist: error:") and "foo" in error
    with pytest.raises(ResourceError, match="is failed"):
        qpu.task_result(task)


def test_tasks_queue_and_stop(tmp_path):
    qpu = QPUResource(workdir=tmp_path, max_running=1)
    first = qpu.task_start({"circuit": BELL, "shots": 10})
    second = qpu.task_start({"circuit": BELL, "shots": 10})
    assert qpu.task_status(second) == "queued"
    qpu.task_stop(second)
    assert qpu.task_status(second) == "cancelled"
    qpu.task_stop(first)
    assert qpu.task_status(first) in ("cancelled", "completed")   # it may have finished
    third = qpu.task_start({"circuit": BELL, "shots": 10})
    assert wait(qpu, third) == "completed"


def test_a_network_task_runs_through_the_distribution_compiler(tmp_path):
    qpu = QPUResource(network=EXAMPLES / "network_chain.toml", workdir=tmp_path)
    task = qpu.task_start({"qasm": str(EXAMPLES / "dqc_small.qasm"), "shots": 50, "seed": 2})
    assert wait(qpu, task) == "completed"
    result = qpu.task_result(task)
    assert sum(result["counts"].values()) == 50 and "fidelity" in result["summary"]
    assert "network" in qpu.target() and qpu.metadata()["network"]


def test_a_task_on_mpi_ranks(tmp_path):
    ghz = BELL.replace("[2]", "[4]").replace("cx q[0], q[1];",
                                               "cx q[0], q[1];\ncx q[1], q[2];\ncx q[2], q[3];")
    qpu = QPUResource(backend="distributed", ranks=2, workdir=tmp_path)
    task = qpu.task_start({"circuit": ghz, "shots": 500, "seed": 5})
    assert wait(qpu, task) == "completed", qpu.task_error(task)
    assert set(qpu.task_result(task)["counts"]) == {"0000", "1111"}


def test_acquire_is_exclusive_and_the_target_is_described(tmp_path):
    qpu = QPUResource(workdir=tmp_path)
    token = qpu.acquire()
    with pytest.raises(ResourceError, match="already acquired"):
        qpu.acquire()
    with pytest.raises(ResourceError, match="not the token"):
        qpu.release("nope")
    qpu.release(token)
    qpu.release(qpu.acquire())
    target = qpu.target()
    assert target["num_qubits"] >= 20 and "cx" in target["gates"]
    assert qpu.metadata()["statuses"] == ["queued", "running", "completed", "failed",
                                          "cancelled"]
    with pytest.raises(ResourceError, match="unknown task"):
        qpu.task_status("x")


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2),
                 st.dictionaries(st.text(max_size=6), st.text(max_size=4), max_size=3)))
def test_a_bad_payload_is_one_clear_error(tmp_path_factory, payload):
    qpu = QPUResource(workdir=tmp_path_factory.mktemp("qpu"))
    if isinstance(payload, dict) and set(payload) == {"circuit"}:
        return   # OpenQASM text: a task that fails in its run, tested above
    with pytest.raises(ResourceError) as info:
        qpu.task_start(payload)
    assert "\n" not in str(info.value)


def test_a_pickled_resource_is_a_handle_to_the_same_live_one(tmp_path):
    import pickle

    qpu = QPUResource(workdir=tmp_path)
    assert pickle.loads(pickle.dumps(qpu)) is qpu
    blob = pickle.dumps(qpu)
    del qpu
    import gc

    gc.collect()
    with pytest.raises(ResourceError, match="valid only in the process"):
        pickle.loads(blob)


# ---- Qiskit primitive jobs as payloads ---------------------------------------------------------

def test_primitive_jobs_run_as_tasks_and_give_the_primitives_results(tmp_path):
    pytest.importorskip("qiskit")
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter
    from qiskit.primitives import StatevectorEstimator

    from qsim_dist.qiskit_primitives import Sampler, primitive_payload

    theta = Parameter("theta")
    qc = QuantumCircuit(2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    measured = qc.copy()
    measured.measure_all()
    qpu = QPUResource(workdir=tmp_path)
    sampler_job = primitive_payload("sampler", [(measured, [[0.4], [2.0]], 300)], seed=9)
    task = qpu.task_start(sampler_job)
    assert wait(qpu, task) == "completed", qpu.task_error(task)
    got = qpu.task_result(task)["primitive_result"]["pubs"][0]["meas"]
    direct = Sampler(seed=9).run([(measured, [[0.4], [2.0]], 300)]).result()[0].data.meas
    assert got == [direct[0].get_counts(), direct[1].get_counts()]

    pub = (qc, ["ZZ", "XX", "IZ"], [0.7])
    on_net = QPUResource(workdir=tmp_path / "net", network=EXAMPLES / "network_pair.toml")
    task = on_net.task_start(primitive_payload("estimator", [pub], ideal=True))
    assert wait(on_net, task) == "completed", on_net.task_error(task)
    result = on_net.task_result(task)
    want = StatevectorEstimator().run([pub]).result()[0].data.evs
    np.testing.assert_allclose(result["primitive_result"]["pubs"][0]["evs"], want, atol=1e-10)
    from qsim_dist.io.hdf5 import load_result
    stored = load_result(result["results_file"]).metadata["primitive_result"]
    assert stored["pubs"][0]["evs"] == result["primitive_result"]["pubs"][0]["evs"]


def test_a_bad_primitive_job_is_refused_or_fails_in_one_line(tmp_path):
    qpu = QPUResource(workdir=tmp_path)
    with pytest.raises(ResourceError, match="'sampler' or 'estimator'"):
        qpu.task_start({"primitive": "magic", "pubs": []})
    with pytest.raises(ResourceError, match="unknown primitive payload keys"):
        qpu.task_start({"primitive": "sampler", "pubs": [], "shots": 3})
    task = qpu.task_start({"primitive": "sampler", "pubs": [{"circuit": "not qpy"}]})
    assert wait(qpu, task) == "failed"
    error = qpu.task_error(task)
    assert error.startswith("qsim-dist: error:") and "QPY" in error
