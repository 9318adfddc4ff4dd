"""qsim_dist against qsim, Qiskit Aer and qulacs: every measurement in a fresh process.

    python benchmarks/run_peers.py                       # all sims, qft + random, n = 20 22 24 26
    python benchmarks/run_peers.py --qubits 12 14 16 --qsim-dist-backend reference --plot --markdown

For each (circuit, n, repeat) every selected simulator runs ``benchmarks/_one.py`` in its own
process (interleaved, so that a change of machine load hits all of them alike). The parent measures
the whole-process wall time and reads the child's peak RSS with ``os.wait4``; the child reports the
simulation-call time, compile time (qsim_dist only) and a checksum of the final state. All
simulators must agree on the checksum (up to global phase) or the run stops with exit status 1.

Outputs (in ``--out-dir``, default ``benchmarks/out``): ``peers.csv`` (median over repeats, one row
per sim x circuit x n x cache state), ``peers_runs.csv`` (every measurement), ``peers.png`` with
``--plot``. See benchmarks/README.md for the meaning of each column.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ONE = os.path.join(HERE, "_one.py")
SIMS = ("qsim_dist", "qsim", "aer", "qulacs")
CIRCUITS = ("qft", "random")
TOLERANCE = 1e-3

COLUMNS = ["sim", "circuit", "n", "precision", "process_s", "sim_s", "compile_s", "peak_rss_mib",
           "rss_over_state", "sim_rss_over_state", "gates",
           # extra columns (after the fixed ones): how the row was measured
           "cache", "repeats", "threads", "p0", "version", "options"]
RUN_COLUMNS = ["sim", "circuit", "n", "repeat", "cache", "precision", "process_s", "sim_s",
               "compile_s", "import_s", "build_s", "translate_s", "peak_rss_mib", "child_rss_mib",
               "rss_over_state", "sim_rss_over_state", "gates", "threads", "p0", "norm"]


class HarnessError(RuntimeError):
    pass


# ---- running one child -------------------------------------------------------------------------

def run_child(sim: str, circuit: str, n: int, args, cache: str = "warm") -> dict:
    """Run ``_one.py`` in a fresh process; return its JSON plus process_s and peak_rss_kib."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["NUMBA_NUM_THREADS"] = str(args.threads)
    cold_dir = None
    if cache == "cold":
        # Empty on-disk compile caches: numba's (kernels use cache=True) and, only where the user
        # has switched it on through the environment, JAX's persistent cache (setting it here
        # would switch on a cache the warm runs do not use).
        cold_dir = tempfile.mkdtemp(prefix="qsim_dist_cold_")
        env["NUMBA_CACHE_DIR"] = os.path.join(cold_dir, "numba")
        if env.get("JAX_COMPILATION_CACHE_DIR"):
            env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(cold_dir, "jax")
    fd, out_path = tempfile.mkstemp(prefix="peer_", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, ONE, sim, circuit, str(n), "--depth", str(args.depth),
           "--seed", str(args.seed), "--threads", str(args.threads),
           "--precision", args.precision, "--qsim-dist-backend", args.qsim_dist_backend,
           "--qsim-fuse", str(args.qsim_fuse), "--out", out_path]
    err = tempfile.TemporaryFile()
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
        status, rusage = _wait(proc, args.timeout)
        process_s = time.perf_counter() - t0
        if status != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            why = "timed out" if status is None else f"exit status {status}"
            raise HarnessError(f"{' '.join(cmd[1:5])} failed ({why}):\n{tail}")
        with open(out_path) as f:
            out = json.load(f)
    finally:
        err.close()
        if os.path.exists(out_path):
            os.unlink(out_path)
        if cold_dir:
            shutil.rmtree(cold_dir, ignore_errors=True)
    out["process_s"] = process_s
    out["peak_rss_kib"] = rusage.ru_maxrss  # Linux: KiB
    out["cache"] = cache if sim == "qsim_dist" else "n/a"
    return out


def _wait(proc: subprocess.Popen, timeout: float):
    """Wait for ``proc`` with os.wait4 (per-child rusage); (None, rusage) after a timeout kill."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, rusage
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, rusage
        time.sleep(0.005)


# ---- checking the states agree -------------------------------------------------------------

def _gram(res: dict) -> np.ndarray:
    """2^n * a a^dagger over the probe amplitudes: invariant under a global phase, O(1) entries
    for a spread-out state (units of the uniform-state probability 2^-n)."""
    a = np.array([complex(re, im) for re, im in res["checksum"]["amps"]])
    return np.outer(a, a.conj()) * float(1 << res["n"])


def check_agreement(results: list[dict]) -> float:
    """Largest disagreement between any result and the first; raise HarnessError above TOLERANCE.

    Entries are compared in units of 2^-n, relatively where an entry is larger than 1 (so a
    concentrated state is compared to ~1e-3 relative, a spread-out one to ~1e-3 * 2^-n absolute).
    """
    ref = results[0]
    g0 = _gram(ref)
    worst = 0.0
    lines = []
    for r in results:
        if r["checksum"]["indices"] != ref["checksum"]["indices"]:
            raise HarnessError("probe indices differ between children (harness bug)")
        d = np.abs(_gram(r) - g0) / np.maximum(1.0, np.abs(g0))
        dn = abs(r["checksum"]["norm"] - 1.0)
        err = max(float(d.max()), dn)
        worst = max(worst, err)
        if err > TOLERANCE:
            lines.append(f"  {r['sim']:10s} (cache {r['cache']}): max scaled difference {d.max():.3e}"
                         f", |norm-1| = {dn:.3e}, p0 = {r['checksum']['p0']:.6e}"
                         f" vs {ref['sim']} p0 = {ref['checksum']['p0']:.6e}")
    if lines:
        raise HarnessError(f"final states disagree for {ref['circuit']} n={ref['n']} "
                           f"(tolerance {TOLERANCE}, reference {ref['sim']}):\n" + "\n".join(lines))
    return worst


# ---- rows ------------------------------------------------------------------------------------

def _state_bytes(n: int, precision: str) -> int:
    return (1 << n) * (8 if precision == "single" else 16)


def run_row(r: dict, repeat: int) -> dict:
    peak_mib = r["peak_rss_kib"] / 1024
    return {
        "sim": r["sim"], "circuit": r["circuit"], "n": r["n"], "repeat": repeat,
        "cache": r["cache"], "precision": r["precision"], "process_s": r["process_s"],
        "sim_s": r["sim_s"], "compile_s": r["compile_s"], "import_s": r["import_s"],
        "build_s": r["build_s"], "translate_s": r["translate_s"], "peak_rss_mib": peak_mib,
        "child_rss_mib": r["maxrss_kib"] / 1024,
        "rss_over_state": peak_mib * 2**20 / _state_bytes(r["n"], r["precision"]),
        # growth from just before the simulation call to the peak at its end (before the
        # harness's checksum), over the state's size
        "sim_rss_over_state": (r.get("sim_peak_rss_kib", r["peak_rss_kib"])
                               - r["rss_before_sim_kib"]) * 1024
        / _state_bytes(r["n"], r["precision"]),
        "gates": r["gates"], "threads": r["threads"], "p0": r["checksum"]["p0"],
        "norm": r["checksum"]["norm"], "version": r.get("version", "?"),
        "options": r.get("options", ""),
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Median over repeats per (sim, circuit, n, cache)."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["sim"], r["circuit"], r["n"], r["cache"]), []).append(r)
    rows = []
    for (sim, circuit, n, cache), rs in groups.items():
        med = lambda k: statistics.median(x[k] for x in rs)  # noqa: E731
        comp = [x["compile_s"] for x in rs if x["compile_s"] is not None]
        rows.append({
            "sim": sim, "circuit": circuit, "n": n, "precision": rs[0]["precision"],
            "process_s": med("process_s"), "sim_s": med("sim_s"),
            "compile_s": statistics.median(comp) if comp else None,
            "peak_rss_mib": med("peak_rss_mib"), "rss_over_state": med("rss_over_state"),
            "sim_rss_over_state": med("sim_rss_over_state"),
            "gates": rs[0]["gates"], "cache": cache, "repeats": len(rs), "threads": rs[0]["threads"],
            "p0": rs[0]["p0"], "version": rs[0]["version"], "options": rs[0]["options"],
        })
    order = {s: i for i, s in enumerate(SIMS)}
    rows.sort(key=lambda r: (CIRCUITS.index(r["circuit"]), r["n"], order[r["sim"]],
                             r["cache"] == "cold"))
    return rows


def _fmt(v, digits=3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.{digits}g}" if abs(v) >= 1e-3 else f"{v:.2e}"
    return str(v)


def write_csv(path: str, rows: list[dict], columns: list[str]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("n/a" if r.get(k) is None else
                            (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k)))
                        for k in columns})
    os.replace(tmp, path)


# ---- tables ----------------------------------------------------------------------------------

_LEFT = {"sim", "circuit", "precision", "cache"}


def _table(header: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if h in _LEFT else "---:" for h in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(header)]
    fmt = lambda row: "  ".join(c.ljust(w) if h in _LEFT else c.rjust(w)  # noqa: E731
                                for h, c, w in zip(header, row, widths))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in body])


def long_table(rows: list[dict], markdown: bool = False) -> str:
    header = ["sim", "circuit", "n", "precision", "cache", "process_s", "sim_s", "compile_s",
              "peak_rss_mib", "rss/state", "sim rss/state", "gates"]
    body = [[r["sim"], r["circuit"], str(r["n"]), r["precision"], r["cache"], _fmt(r["process_s"]),
             _fmt(r["sim_s"]), _fmt(r["compile_s"]), _fmt(r["peak_rss_mib"]),
             _fmt(r["rss_over_state"], 2), _fmt(r["sim_rss_over_state"], 2),
             str(r["gates"])] for r in rows]
    return _table(header, body, markdown)


def ratio_table(rows: list[dict], sims: list[str], markdown: bool = False) -> str:
    """One line per (circuit, n): process time (simulation time) per sim, and the ratios
    qsim_dist/qsim and qsim_dist/aer of process time (and of simulation time)."""
    warm = {(r["sim"], r["circuit"], r["n"]): r for r in rows if r["cache"] != "cold"}
    cold = {(r["circuit"], r["n"]): r for r in rows if r["cache"] == "cold"}
    keys = sorted({(r["circuit"], r["n"]) for r in rows},
                  key=lambda k: (CIRCUITS.index(k[0]), k[1]))
    header = ["circuit", "n"] + [f"{s} s" for s in sims]
    if cold:
        header.append("qsim_dist cold s")
    pairs = [p for p in ("qsim", "aer") if p in sims and "qsim_dist" in sims]
    header += [f"qd/{p} proc" for p in pairs] + [f"qd/{p} sim" for p in pairs]
    body = []
    for c, n in keys:
        line = [c, str(n)]
        for s in sims:
            r = warm.get((s, c, n))
            line.append("-" if r is None else f"{_fmt(r['process_s'])} ({_fmt(r['sim_s'])})")
        if cold:
            r = cold.get((c, n))
            line.append("-" if r is None else f"{_fmt(r['process_s'])} ({_fmt(r['sim_s'])})")
        qd = warm.get(("qsim_dist", c, n))
        for key in ("process_s", "sim_s"):
            for p in pairs:
                other = warm.get((p, c, n))
                line.append("-" if qd is None or other is None or not other[key]
                            else f"{qd[key] / other[key]:.2f}")
        body.append(line)
    return _table(header, body, markdown)


# ---- plot ------------------------------------------------------------------------------------

def plot(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    circs = [c for c in CIRCUITS if any(r["circuit"] == c for r in rows)]
    fig, axes = plt.subplots(1, len(circs), figsize=(6 * len(circs), 4.5), squeeze=False)
    colors = {"qsim_dist": "C3", "qsim": "C0", "aer": "C2", "qulacs": "C1"}
    for ax, c in zip(axes[0], circs):
        for s in SIMS:
            for cache, style in (("warm", ""), ("n/a", ""), ("cold", "cold ")):
                rs = sorted((r for r in rows if r["sim"] == s and r["circuit"] == c
                             and r["cache"] == cache), key=lambda r: r["n"])
                if not rs:
                    continue
                ns = [r["n"] for r in rs]
                lw = 1.0 if cache == "cold" else 1.8
                ax.plot(ns, [r["process_s"] for r in rs], "o-", color=colors[s], lw=lw,
                        alpha=0.5 if cache == "cold" else 1.0, label=f"{s} {style}process")
                ax.plot(ns, [r["sim_s"] for r in rs], "x--", color=colors[s], lw=lw,
                        alpha=0.5 if cache == "cold" else 1.0, label=f"{s} {style}simulate")
        ax.set_xticks(sorted({r["n"] for r in rows if r["circuit"] == c}))
        ax.set_yscale("log")
        ax.set_xlabel("qubits")
        ax.set_ylabel("seconds (median)")
        ax.set_title(c)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


# ---- main ------------------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Compare qsim_dist with qsim, Qiskit Aer and qulacs (fresh process each).")
    ap.add_argument("--sims", nargs="+", choices=SIMS, default=list(SIMS))
    ap.add_argument("--circuits", nargs="+", choices=CIRCUITS, default=list(CIRCUITS))
    ap.add_argument("--qubits", nargs="+", type=int, default=[20, 22, 24, 26])
    ap.add_argument("--repeat", type=int, default=1, help="measurements per point (median kept)")
    ap.add_argument("--depth", type=int, default=20, help="layers of the random circuit")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the random circuit")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for every simulator (default: CPUs available to this process)")
    ap.add_argument("--precision", default="single", choices=("single", "double"),
                    help="qsim_dist precision (peers: qsim and Aer single, qulacs double)")
    ap.add_argument("--qsim-dist-backend", default="statevector",
                    help="qsim_dist backend name (reference: for checking the harness)")
    ap.add_argument("--qsim-fuse", type=int, default=4, help="qsim max_fused_gate_size")
    ap.add_argument("--cold", action="store_true",
                    help="also one qsim_dist run per point with empty numba/JAX disk caches")
    ap.add_argument("--no-warmup", action="store_true", help="skip the qsim_dist warm-up run")
    ap.add_argument("--plot", action="store_true", help="write peers.png")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per child process")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    args.sims = [s for s in SIMS if s in args.sims]
    args.circuits = [c for c in CIRCUITS if c in args.circuits]
    args.qubits = sorted(set(args.qubits))
    return args


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    t_start = time.perf_counter()
    try:
        if "qsim_dist" in args.sims and not args.no_warmup:
            for c in args.circuits:  # numba and JAX write compiled code to their disk caches
                _progress(f"warm-up: qsim_dist ({args.qsim_dist_backend}) {c} n={args.qubits[0]}")
                run_child("qsim_dist", c, args.qubits[0], args)
        runs: list[dict] = []
        worst = 0.0
        for c in args.circuits:
            for n in args.qubits:
                point = []
                for rep in range(args.repeat):
                    for s in args.sims:
                        r = run_child(s, c, n, args)
                        _progress(f"{c:6s} n={n:2d} rep {rep}  {s:9s} process {r['process_s']:8.3f}"
                                  f" s  sim {r['sim_s']:8.3f} s  rss {r['peak_rss_kib']/1024:8.0f}"
                                  f" MiB")
                        point.append(r)
                        runs.append(run_row(r, rep))
                if args.cold and "qsim_dist" in args.sims:
                    r = run_child("qsim_dist", c, n, args, cache="cold")
                    _progress(f"{c:6s} n={n:2d} cold   qsim_dist process {r['process_s']:8.3f} s"
                              f"  sim {r['sim_s']:8.3f} s  compile {r['compile_s']:.3f} s")
                    point.append(r)
                    runs.append(run_row(r, 0))
                worst = max(worst, check_agreement(point))
    except HarnessError as e:
        print(f"run_peers: {e}", file=sys.stderr)
        return 1
    rows = summarise(runs)
    write_csv(os.path.join(args.out_dir, "peers.csv"), rows, COLUMNS)
    write_csv(os.path.join(args.out_dir, "peers_runs.csv"), runs, RUN_COLUMNS + ["version", "options"])
    label = (f"qsim_dist backend={args.qsim_dist_backend} precision={args.precision}; "
             f"threads={args.threads}; qsim max_fused_gate_size={args.qsim_fuse}; "
             f"repeats={args.repeat} (median); qulacs is double precision")
    print(f"# {label}")
    print(f"# all final states agree (largest scaled difference {worst:.1e} <= {TOLERANCE})")
    print(f"# {len(runs)} measurements in {time.perf_counter() - t_start:.0f} s; "
          f"{os.path.join(args.out_dir, 'peers.csv')}")
    print()
    print(long_table(rows, args.markdown))
    print()
    print("process time in s (simulation call in s); qd/X = qsim_dist / X, > 1 means qsim_dist "
          "is slower")
    print()
    print(ratio_table(rows, args.sims, args.markdown))
    if args.plot:
        path = os.path.join(args.out_dir, "peers.png")
        plot(rows, path, label)
        print(f"\n# plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
