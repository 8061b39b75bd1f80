"""Advisory file locks that processes and threads take turns on, and that notice when their file is removed.

`flock` locks belong to an open file, so two threads that each open the lock file exclude each other
just as two processes do, and the kernel releases a dead holder's lock. A lock whose file was removed
or replaced no longer excludes anyone: a newcomer would create a new file and lock that. So a lock is
only taken on the file that is at the path when it is held, and `intact()` tells a holder, before it
does anything irreversible, whether that is still so.
"""

from __future__ import annotations

import fcntl
import os
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
