"""The one way this package writes a file: checked up front, written aside, renamed at the end.

Every writer (results files, checkpoints, pictures, OpenQASM export, network reports) goes
through :func:`check_output_path` before any work and :func:`atomic_write` to write, so that

* only a regular file is ever replaced: a path naming a directory, FIFO, device, socket or a
  file of ``/proc`` or ``/sys`` is refused in one line before anything is simulated (a symlink
  is followed: to a regular file, or to a path that does not exist yet in a directory that
  accepts files, which is then the file written; the link itself is kept);
* the file is written under a temporary name in the target's directory, made durable
  (``fsync``) and renamed onto the target: a failure at any moment, a full disk, an exception
  or ``KeyboardInterrupt``, removes the temporary file and leaves whatever was at the path
  untouched;
* a failing write (full disk, quota, I/O error) is an ordinary error of the caller's class
  (:class:`~qsim_dist.errors.QsimDistError`), one line. HDF5 is given a file object
  (:class:`SafeFile`) whose writes never fail inside HDF5: the first error is recorded, later
  writes are dropped, and the error is raised once HDF5 has closed the file. HDF5 itself
  crashes the process (segmentation fault, HDF5 2.0) when a write fails under it.

A collective writer (the distributed backend) uses the pieces: :func:`check_output_path` and
:func:`create_temp` on one rank, :class:`SafeFile` on every rank, :func:`publish` or
:func:`discard` on one rank.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

from ..errors import QsimDistError

#: where no file is ever written: kernel interfaces, not storage
_VIRTUAL = ("/proc", "/sys")


class OutputFileError(QsimDistError):
    """An output file cannot be written (bad path, full disk, I/O error)."""


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def shown(path: object) -> str:
    """``path`` quoted for a one-line message (escaped when it holds control characters)."""
    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    return f"'{text}'" if text.isprintable() else repr(text)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for messages (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    return "it is not a regular file"


def check_output_path(path: str | os.PathLike, what: str = "results",
                      error: type[QsimDistError] = OutputFileError) -> Path:
    """Raise ``error`` (one line) unless a file can be written at ``path``; return the file
    that will be written (``path`` with symlinks resolved).

    Cheap enough to call before a long simulation, so that a mistake fails at once. Accepted:
    an existing regular file, or a new name in an existing directory where a file can be
    created (tried: a probe file is created and removed, which also catches read-only mounts,
    and is the only test that holds for root). ``what`` names the file in messages
    ("results", "a checkpoint", "a picture", ...).
    """
    where = f"cannot write {what} to {shown(path)}"
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{where}: expected a file name, got {type(path).__name__}")
    try:
        name = os.fspath(path)
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        if not name or "\0" in name:
            raise error(f"{where}: expected a file name")
        real = Path(os.path.realpath(name))
        top = "/" + real.parts[1] if len(real.parts) > 1 else "/"
        if top in _VIRTUAL:
            raise error(f"{where}: {top} is a kernel interface, not a place for files")
        try:
            kind = _kind(os.stat(real).st_mode)
        except FileNotFoundError:
            kind = None
        if kind is not None:
            raise error(f"{where}: {kind}")
        parent = real.parent
        try:
            parent_mode = os.stat(parent).st_mode
        except FileNotFoundError:
            raise error(f"{where}: directory '{parent}' does not exist") from None
        if not stat.S_ISDIR(parent_mode):
            raise error(f"{where}: '{parent}' is not a directory")
        fd, probe = create_temp(real, ".probe-")
        os.close(fd)
        os.unlink(probe)
    except QsimDistError:
        raise
    except (OSError, ValueError) as exc:
        if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EROFS:
            raise error(f"{where}: directory '{Path(os.path.realpath(name)).parent}' is not "
                        f"writable ({_one_line(exc)})") from None
        raise error(f"{where}: {_one_line(exc)}") from None
    return real


def create_temp(target: Path, tag: str = ".tmp-") -> tuple[int, Path]:
    """A new empty file next to ``target`` (same directory, so the rename is atomic), opened
    for reading and writing: (descriptor, path). Its mode is the usual one for a new file
    (0666 less the umask)."""
    stem = f".{target.name[:64]}{tag}{os.getpid()}-"
    while True:
        tmp = target.with_name(stem + secrets.token_hex(4))
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                           0o666), tmp
        except FileExistsError:
            continue


def check_space(directory: Path, size: int, where: str,
                error: type[QsimDistError] = OutputFileError) -> None:
    """Raise ``error`` when the file system of ``directory`` has less than ``size`` bytes
    free, so that a large write is refused before it starts (root may use the reserved
    blocks). Best effort: a file system that cannot tell passes."""
    if size <= 0:
        return
    try:
        st = os.statvfs(directory)
    except OSError:
        return
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    free = blocks * st.f_frsize
    if st.f_blocks and size > free:
        raise error(f"{where}: not enough space on the file system (needs {_bytes(size)}, "
                    f"{_bytes(free)} free)")


def _bytes(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


class SafeFile(io.RawIOBase):
    """A binary file on a descriptor whose writes do not raise: the first failure is kept in
    :attr:`failure` and raised by :meth:`check`, later writes are dropped (reads of what was
    not written come back as zeros). HDF5 (``h5py.File(SafeFile(...), "w")``), matplotlib
    and plain writes all use it, so a full disk never reaches them as an error."""

    def __init__(self, fd: int, path: Path | None = None, own: bool = True):
        super().__init__()
        self.fd = fd
        self.path = path
        self.own = own
        self.pos = 0
        self.failure: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.pos = offset
        elif whence == os.SEEK_CUR:
            self.pos += offset
        else:
            self.pos = os.fstat(self.fd).st_size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            try:
                chunk = os.preadv(self.fd, [view[done:]], self.pos + done)
            except OSError as exc:
                self._fail(exc)
                chunk = 0
            if chunk <= 0:
                view[done:] = bytes(len(view) - done)
                break
            done += chunk
        self.pos += len(view)
        return len(view)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.failure is None:
            done = 0
            try:
                while done < len(view):
                    done += os.pwrite(self.fd, view[done:], self.pos + done)
            except OSError as exc:
                self._fail(exc)
        self.pos += len(view)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if self.failure is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as exc:
                self._fail(exc)
        return size

    def flush(self) -> None:
        pass  # nothing buffered: every write goes to the descriptor

    def _fail(self, exc: OSError) -> None:
        if self.failure is None:
            self.failure = exc

    def check(self, sync: bool = True) -> None:
        """Raise the first failed write, if any; then make the file durable (``fsync``)."""
        if self.failure is not None:
            raise self.failure
        if sync:
            os.fsync(self.fd)

    def close(self) -> None:
        if not self.closed and self.own:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        super().close()

    @classmethod
    def open(cls, path: Path) -> "SafeFile":
        """An existing file (a temporary made by :func:`create_temp` on another rank)."""
        return cls(os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0)), path)


def publish(tmp: Path, target: Path, keep_mode: bool = True) -> None:
    """Rename the complete, durable ``tmp`` onto ``target`` (the one atomic step); a file
    replaced keeps its permission bits."""
    if keep_mode:
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
    os.replace(tmp, target)


def discard(tmp: Path | None) -> None:
    """Remove a temporary file, whatever state it is in."""
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_error(what: str, path: str | os.PathLike, exc: BaseException,
                error: type[QsimDistError] = OutputFileError) -> QsimDistError:
    """The one-line error for a write that failed with ``exc`` (OSError from the disk,
    RuntimeError or OSError from HDF5)."""
    reason = _one_line(exc)
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = f"the disk is full or over quota ({reason})"
    return error(f"cannot write {what} to {shown(path)}: {reason}; the previous file, if any, "
                 "is unchanged")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, what: str = "results",
                 error: type[QsimDistError] = OutputFileError, size: int = 0
                 ) -> Iterator[SafeFile]:
    """Write the file at ``path`` atomically: yields a :class:`SafeFile` on a temporary file
    next to it (``.path`` is its name) and renames it onto the target when the block ends
    without error. Raises ``error`` (one line) for a path that cannot be written
    (:func:`check_output_path`), less than ``size`` bytes free (:func:`check_space`) or a
    failed write (OSError; RuntimeError from HDF5); on any failure, ``KeyboardInterrupt``
    included, the temporary file is removed and the target left as it was."""
    target = check_output_path(path, what, error)
    check_space(target.parent, size, f"cannot write {what} to {shown(path)}", error)
    tmp = None
    try:
        fd, tmp = create_temp(target)
        with SafeFile(fd, tmp) as out:
            yield out
            out.check()
        publish(tmp, target)
    except QsimDistError:
        discard(tmp)
        raise
    except (OSError, RuntimeError) as exc:
        discard(tmp)
        raise write_error(what, path, exc, error) from None
    except BaseException:
        discard(tmp)
        raise
