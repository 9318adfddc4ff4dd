"""The tensor backend under ``mpiexec -n 1``, ``-n 2`` and ``-n 4`` (and plain pytest): the
slices of a large contraction are shared out among the ranks and one reduction sums them; every
rank gets the one-process answer (to rounding), and a contraction over max_memory is sliced,
not refused, while it can be."""

from __future__ import annotations

import numpy as np
import pytest

from qsim_dist import library as lib
from qsim_dist.backends import get_backend
from qsim_dist.comm import Comm


@pytest.fixture(scope="module")
def ranks():
    return Comm()


def test_a_large_contraction_is_shared_among_the_ranks(ranks):
    c = lib.random_circuit(16, 10, seed=2)
    # greedy paths (one known network); every contraction of 1e6 flops or more is shared
    want = get_backend("tensor", optimize="greedy").amplitudes(c, [0, 12345, 777])
    backend = get_backend("tensor", comm=ranks, optimize="greedy", spread_flops=1e6)
    got = backend.amplitudes(c, [0, 12345, 777])
    np.testing.assert_allclose(got, want, atol=1e-13)
    s = backend.stats
    assert s.whole_flops >= s.contractions * 1e6   # each amplitude is worth sharing
    if ranks.size > 1:
        assert s.slices >= 3 * ranks.size
        assert s.flops <= 1.1 * s.whole_flops   # slicing added at most a tenth of the work
    # every rank holds the same answer
    gathered = ranks.allgather(got)
    for other in gathered:
        np.testing.assert_array_equal(other, got)


def test_a_contraction_over_max_memory_is_sliced_to_fit(ranks):
    c = lib.random_circuit(14, 8, seed=5)
    want = get_backend("reference").amplitudes(c, [3, 9000])
    backend = get_backend("tensor", max_memory=1 << 13, comm=ranks)
    np.testing.assert_allclose(backend.amplitudes(c, [3, 9000]), want, atol=1e-12)
    assert backend.stats.largest_intermediate * 16 <= 1 << 13 and backend.stats.slices > 2


def test_expectations_and_samples_agree_at_every_rank_count(ranks):
    graph = [(i, (i + 1) % 60) for i in range(60)] + [(i, (i + 30) % 60) for i in range(30)]
    c = lib.qaoa_maxcut(graph, 60, [0.3], [0.7])
    h = " + ".join(f"Z{a} Z{b}" for a, b in graph[:10])
    want = get_backend("tensor").expectation(c, h)
    assert get_backend("tensor", comm=ranks).expectation(c, h) == pytest.approx(want, abs=1e-12)
    m = lib.ghz(40, measure=True)
    a = get_backend("tensor", comm=ranks).run(m, shots=200, seed=9).counts
    assert a == get_backend("tensor").run(m, shots=200, seed=9).counts


def test_run_command_prints_one_report_with_every_ranks_time(ranks, capsys, tmp_path):
    import json

    from qsim_dist.cli import _main
    from qsim_dist.io.qasm import dump

    from pathlib import Path

    path = Path(ranks.bcast(str(tmp_path))) / "r16.qasm"   # rank 0's folder: one file for all
    c = lib.random_circuit(16, 10, seed=2)
    if ranks.rank == 0:
        dump(c, path)
    ranks.comm.Barrier()
    bits = ["0" * 16, format(12345, "016b")]
    assert _main(["run", str(path), "--backend", "tensor", "--optimize", "greedy", "--shots",
                  "0", "--json", "--stats", "--amplitude", *bits]) == 0
    text = capsys.readouterr().out
    ranks.comm.Barrier()
    if ranks.rank != 0:
        assert text == ""
        return
    summary = json.loads(text)
    want = get_backend("reference").amplitudes(c, [0, 12345])
    got = [complex(*summary["amplitudes"][b]) for b in bits]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert summary["ranks"] == ranks.size and len(summary["compute_time_s"]) == ranks.size
    cost = summary["contraction"]
    assert cost["slices"] >= cost["contractions"] and cost["flops"] >= cost["whole_flops"] > 0
