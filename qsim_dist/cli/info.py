"""``qsim-dist info``: versions of qsim_dist and its dependencies, JAX devices, the MPI library,
the CPU count and the backends of the registry (:data:`qsim_dist.backends.BACKENDS`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

from ..backends import BACKENDS
from .common import Job, job_fields


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``info`` command to ``subparsers`` (of :func:`qsim_dist.cli.build_parser`)."""
    info = subparsers.add_parser("info", help="show versions, devices and MPI library",
                                 description="Show versions of qsim_dist and its dependencies, "
                                             "JAX devices, the MPI library and the CPU count.")
    info.add_argument("--json", action="store_true", help="print JSON on stdout")
    return info


def prepare(args: argparse.Namespace) -> Job:
    """``qsim-dist info``: nothing to check or read."""
    return Job(job_fields(args, {}), lambda: execute(args))


def _version_of(module_name: str) -> str:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return "not installed"
    return str(getattr(module, "__version__", "unknown"))


def _jax_info() -> dict[str, Any]:
    try:
        import jax
    except ImportError:
        return {"version": "not installed"}
    info: dict[str, Any] = {"version": jax.__version__}
    try:
        info["default_backend"] = jax.default_backend()
        info["devices"] = [str(d) for d in jax.devices()]
    except Exception as exc:  # a broken accelerator setup is information, not a crash
        info["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return info


def _mpi_info() -> dict[str, Any]:
    try:
        import mpi4py
    except ImportError:
        return {"version": "not installed"}
    info: dict[str, Any] = {"version": mpi4py.__version__}
    try:
        from mpi4py import MPI

        major, minor = MPI.Get_version()
        info["mpi_standard"] = f"{major}.{minor}"
        library = MPI.Get_library_version().strip()
        info["library"] = " ".join(library.splitlines()[0].split()) if library else "unknown"
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return info


def _cpu_kernels_info() -> str:
    """Whether the compiled CPU kernels load, and their thread count."""
    try:
        from qsim_dist.kernels import cpu
    except ImportError as exc:
        return f"missing ({exc})"
    return f"compiled, {cpu.get_num_threads()} OpenMP threads"


def collect_info() -> dict[str, Any]:
    """Versions and devices, as ``qsim-dist info --json`` prints them."""
    from ..version import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    h5 = {"version": _version_of("h5py")}
    if h5["version"] != "not installed":
        import h5py

        h5["hdf5"] = h5py.version.hdf5_version
    return {
        "qsim_dist": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
                  f"{sys.executable})",
        "platform": platform.platform(),
        "numpy": _version_of("numpy"),
        "jax": _jax_info(),
        "cpu_kernels": _cpu_kernels_info(),
        "numba": _version_of("numba"),
        "h5py": h5,
        "mpi4py": _mpi_info(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "backends": list(BACKENDS),
    }


def execute(args: argparse.Namespace) -> int:
    """Print :func:`collect_info`, as a table or (``--json``) as JSON."""
    info = collect_info()
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    jax, mpi, h5 = info["jax"], info["mpi4py"], info["h5py"]
    if "devices" in jax:
        jax_line = (f"{jax['version']} (default backend {jax['default_backend']}; devices: "
                    f"{', '.join(jax['devices'])})")
    else:
        jax_line = jax["version"] + (f" ({jax['error']})" if "error" in jax else "")
    if "library" in mpi:
        mpi_line = f"{mpi['version']} (MPI {mpi['mpi_standard']}: {mpi['library']})"
    else:
        mpi_line = mpi["version"] + (f" ({mpi['error']})" if "error" in mpi else "")
    h5_line = h5["version"] + (f" (HDF5 {h5['hdf5']})" if "hdf5" in h5 else "")
    rows = [
        ("qsim_dist", info["qsim_dist"]), ("python", info["python"]),
        ("platform", info["platform"]), ("numpy", info["numpy"]), ("jax", jax_line),
        ("cpu kernels", info["cpu_kernels"]), ("numba", info["numba"]), ("h5py", h5_line),
        ("mpi4py", mpi_line),
        ("cpus", f"{info['cpu_count']} ({info['cpus_usable']} usable)"),
        ("backends", ", ".join(info["backends"])),
    ]
    for name, value in rows:
        sys.stdout.write(f"{name:<12}{value}\n")
    return 0
