"""Advisory file locks that processes and threads take turns on, and that notice when their file is removed.

`flock` locks belong to an open file, so two threads that each open the lock file exclude each other
just as two processes do, and the kernel releases a dead holder's lock. A lock whose file was removed
or replaced no longer excludes anyone: a newcomer would create a new file and lock that. So a lock is
only taken on the file that is at the path when it is held, and `intact()` tells a holder, before it
does anything irreversible, whether that is still so.

Read pins (`ReadPin`, `file_in_use`) tell a writer which versions of a store are being read.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hippograph.errors import StoreError

_held = threading.local()  # path -> FileLock this thread holds, so nested calls in one thread go through


class FileLock:
    def __init__(self, path: Path, handle):
        self.path = path
        self._handle = handle

    def intact(self) -> bool:
        """Whether the file at `path` is still the one this lock holds (nobody removed or replaced it)."""
        try:
            return _same_file(self._handle.fileno(), self.path)
        except OSError:
            return False


@contextmanager
def file_lock(path: str | Path, timeout: float, busy: str) -> Iterator[FileLock]:
    """Hold an exclusive lock on `path` (created if missing) for the block. Waits up to `timeout` seconds
    (0: not at all) for another holder, then raises StoreError(`busy`). Re-entrant within a thread."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    held: dict[str, FileLock] = _held.__dict__.setdefault("locks", {})
    key = str(path.resolve())
    if key in held:
        yield held[key]
        return
    lock = FileLock(path, _acquire(path, timeout, busy))
    held[key] = lock
    try:
        yield lock
    finally:
        del held[key]
        fcntl.flock(lock._handle, fcntl.LOCK_UN)
        lock._handle.close()


def _acquire(path: Path, timeout: float, busy: str):
    deadline = time.monotonic() + timeout
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            if time.monotonic() >= deadline:
                raise StoreError(busy) from None
            time.sleep(0.05)
            continue
        if _same_file(handle.fileno(), path):
            return handle
        handle.close()  # removed or replaced while we waited for it: lock the file now at the path


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(descriptor)
    return (mine.st_dev, mine.st_ino) == (at_path.st_dev, at_path.st_ino)


# ---- read pins: which version of a store file is being read -------------------------------------------
#
# A writer may rewrite the previous version of a store in place (`<store>.prev`), so it must know that
# nobody still reads that file. DuckDB's own locks cannot tell: they are classic POSIX locks, which the
# kernel keeps per process (a writer never conflicts with a reader in its own process) and drops when
# the process closes any descriptor of the file. Open file description (OFD) locks have neither flaw,
# and conflict with DuckDB's POSIX locks, in other processes and in this one: a reader pins the file it
# reads with a shared OFD lock, and a writer's DuckDB connection is refused while any pin is held.

OFD_LOCKS = sys.platform == "linux" and hasattr(fcntl, "F_OFD_SETLK") and struct.calcsize("l") == 8
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on 64-bit Linux: type, whence, start, length, pid (0 for OFD)


class ReadPin:
    """A descriptor of one version of a store file, holding a shared OFD lock on it while it is read."""

    def __init__(self, descriptor: int):
        self._descriptor = descriptor

    @staticmethod
    def take(path: Path) -> "ReadPin | None":
        """Pin the file now at `path`; None when a writer holds that file (it is no longer the one at the
        path, try again) or the path now names another file. BlockingIOError when the file still at the
        path is held for writing (by another program: hippograph never writes the published file); OSError
        when the file cannot be locked at all (a kernel or file system without OFD locks)."""
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        pin = ReadPin(descriptor)
        try:
            fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0))
        except OSError as error:
            published = pin.still_at(path)
            pin.release()
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if published:
                raise BlockingIOError(errno.EAGAIN, f"{path} is locked by another process") from None
            return None  # held for writing: a writer rewrites the file it replaced
        if not pin.still_at(path):
            pin.release()
            return None
        return pin

    def still_at(self, path: Path) -> bool:
        """Whether `path` still names the pinned file (so the file was published, and not rewritten since:
        a writer cannot rewrite a pinned file)."""
        return _same_file(self._descriptor, path)

    def release(self) -> None:
        os.close(self._descriptor)


def file_in_use(path: Path) -> bool:
    """Whether the file at `path` is open in this process, or locked by any process: a read pin, or a
    DuckDB connection (which locks its file, read-only or not). In this process a DuckDB connection may
    have lost its lock (any descriptor of the file closed, e.g. by another connection, drops them all),
    so this process's open descriptors are looked at instead."""
    if _open_here(path):
        return True
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        found = _FLOCK.unpack(fcntl.fcntl(descriptor, fcntl.F_OFD_GETLK, probe))
        return found[0] != fcntl.F_UNLCK
    finally:
        os.close(descriptor)  # drops no lock of this process: it had the file open nowhere else


def _open_here(path: Path) -> bool:
    """Whether some descriptor of this process refers to the file at `path` (Linux: /proc/self/fd)."""
    wanted = os.stat(path)
    for name in os.listdir("/proc/self/fd"):
        try:
            found = os.stat(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile, or the listing's own descriptor
            continue
        if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
            return True
    return False
