"""How much memory this process may use, and the one check a run makes before it allocates.

A job is limited by the smallest of:

- its cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``, at the process's own cgroup and
  every cgroup above it: Slurm, containers and systemd slices set them), less what the cgroup
  already holds that cannot be reclaimed (its usage less inactive file cache);
- the host's available memory (``MemAvailable`` of ``/proc/meminfo``);
- the process's address-space limit (``RLIMIT_AS``, ``ulimit -v``), less what it already maps.

Going over a cgroup limit gets the process killed by the kernel with nothing on stderr, so every
backend asks :func:`check_fits` before it allocates a state and refuses, in one line with the
numbers, a run that would not fit.

The readers take their root paths as arguments (defaults: the real ``/proc`` and
``/sys/fs/cgroup``), so that tests can point them at a fake tree.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Iterator

from .errors import BackendError

__all__ = ["available_bytes", "cgroup_limit", "host_available", "address_space_available",
           "check_fits", "format_bytes", "precision_hint", "UNLIMITED"]

#: No limit found.
UNLIMITED = 1 << 63
# cgroup v1 writes "no limit" as the largest page-aligned signed 64-bit value (9223372036854771712
# with 4 KiB pages), v2 as "max"; a number this large is no limit in either.
_NO_LIMIT = 1 << 62


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _number(text: str | None) -> int | None:
    """The integer in a one-value cgroup file; None when missing, unreadable or ``max``."""
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit():  # "max", "", garbage: no limit from this file
        return None
    return int(text)


def _stat(path: Path, key: str) -> int:
    """``key`` of a cgroup ``memory.stat`` file, 0 when absent."""
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def _cgroup_dirs(root: Path, path: str) -> Iterator[Path]:
    """``root/path`` and every directory above it up to ``root`` (deepest first). In a container
    the process's path may not exist under ``root`` (the mount is the container's own cgroup):
    the levels that do not exist are skipped, ``root`` itself is always tried."""
    parts = [p for p in path.strip().split("/") if p and p not in (".", "..")]
    for k in range(len(parts), -1, -1):
        yield root.joinpath(*parts[:k])


def _level_room(directory: Path, limit_file: str, usage_file: str, inactive_key: str
                ) -> int | None:
    limit = _number(_read(directory / limit_file))
    if limit is None or limit >= _NO_LIMIT:
        return None
    usage = _number(_read(directory / usage_file)) or 0
    # page cache the kernel reclaims before it kills: not counted as used (the working set)
    used = max(usage - _stat(directory / "memory.stat", inactive_key), 0)
    return max(limit - used, 0)


def cgroup_limit(proc: str | os.PathLike = "/proc", root: str | os.PathLike = "/sys/fs/cgroup"
                 ) -> int | None:
    """Bytes this process's cgroups still let it allocate (the smallest room over its cgroup and
    the cgroups above it, v1 and v2), or None when no cgroup limits memory.

    Parameters
    ----------
    proc : the ``/proc`` directory (``self/cgroup`` names the process's cgroups).
    root : where the cgroup hierarchies are mounted: v2 at ``root`` (or ``root/unified`` on a
        hybrid system), v1 memory controller at ``root/<controllers>`` (``root/memory``).
    """
    proc, root = Path(proc), Path(root)
    rooms: list[int] = []
    for line in (_read(proc / "self" / "cgroup") or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":  # v2: one hierarchy for every controller
            for base in (root, root / "unified"):
                for d in _cgroup_dirs(base, path):
                    room = _level_room(d, "memory.max", "memory.current", "inactive_file")
                    if room is not None:
                        rooms.append(room)
        elif "memory" in controllers.split(","):
            for d in _cgroup_dirs(root / controllers, path):
                room = _level_room(d, "memory.limit_in_bytes", "memory.usage_in_bytes",
                                   "total_inactive_file")
                if room is not None:
                    rooms.append(room)
    return min(rooms) if rooms else None


def host_available(proc: str | os.PathLike = "/proc") -> int | None:
    """The host's available memory in bytes (``MemAvailable``), or None when not known."""
    for line in (_read(Path(proc) / "meminfo") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "MemAvailable:" and parts[1].isdigit():
            return int(parts[1]) * 1024
    try:  # not Linux: physical pages free now, where the platform tells
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def address_space_available(proc: str | os.PathLike = "/proc") -> int | None:
    """Bytes of address space left under ``RLIMIT_AS`` (its soft limit less the process's
    ``VmSize``), or None when there is no such limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = 0
    for line in (_read(Path(proc) / "self" / "status") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "VmSize:" and parts[1].isdigit():
            mapped = int(parts[1]) * 1024
    return max(soft - mapped, 0)


def available_bytes(proc: str | os.PathLike = "/proc",
                    root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """What this process may still allocate: the smallest of its cgroup room, the host's
    available memory and its address-space room (:data:`UNLIMITED` when none is known)."""
    limits = [cgroup_limit(proc, root), host_available(proc), address_space_available(proc)]
    return min((x for x in limits if x is not None), default=UNLIMITED)


def available_for(kernels) -> int:
    """What a state held by the kernel set ``kernels`` may use: the accelerator's free memory
    for JAX on a GPU or TPU (as its allocator reports it), else :func:`available_bytes`."""
    if getattr(kernels, "name", None) == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            stats = device.memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return available_bytes()


def format_bytes(n: int | float) -> str:
    """``8.0 GiB``-style size; sizes past the units as a power of two (``2^74 B``)."""
    n = int(n)
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"2^{n.bit_length() - 1} B" if n & (n - 1) == 0 else f"about 2^{n.bit_length()} B"


# Whether the caller of a run can choose the precision (the CLI's `dqc` cannot): the hint of
# check_fits is only given where it can be followed.
_PRECISION_CHOICE: contextvars.ContextVar[bool] = contextvars.ContextVar("precision_choice",
                                                                         default=True)


@contextlib.contextmanager
def precision_hint(enabled: bool) -> Iterator[None]:
    """Within the block, :func:`precision_hint_for` gives no hint when ``enabled`` is False (a
    caller that offers no choice of precision, such as ``qsim-dist dqc``)."""
    token = _PRECISION_CHOICE.set(bool(enabled))
    try:
        yield
    finally:
        _PRECISION_CHOICE.reset(token)


def precision_hint_for(precision: str) -> str | None:
    """The hint for a run in ``precision`` that does not fit: halving the amplitudes, when the
    run is in double precision and its caller can choose."""
    if precision == "double" and _PRECISION_CHOICE.get():
        return "precision single halves it"
    return None


def check_fits(needed_bytes: int, what: str, precision_hint: str | None = None,
               available: int | None = None) -> None:
    """Refuse, before allocating, a request for more memory than this job may use.

    Parameters
    ----------
    needed_bytes : everything the request allocates at its peak.
    what : what needs it, for the message ("a 30-qubit state, complex64, and one copy").
    precision_hint : a remedy to append ("precision single halves it"), or None where the
        caller has no choice of precision.
    available : the bytes to compare with; by default :func:`available_bytes`.

    Raises
    ------
    BackendError
        "<what> needs 8.0 GiB, the job may use 2.0 GiB (<hint>)".
    """
    if available is None:
        available = available_bytes()
    if needed_bytes <= available:
        return
    hint = f" ({precision_hint})" if precision_hint else ""
    raise BackendError(f"{what} needs {format_bytes(needed_bytes)}, the job may use "
                       f"{format_bytes(available)}{hint}")
