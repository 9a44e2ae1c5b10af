"""Private folders and files: everything under ``var/`` belongs to the service user alone.

Each process also runs with ``umask 0077`` (:mod:`bot.core.process`), but folders may be
made by a setup step run from a shell, or by code that runs outside a process of
ours (tests, ``make migrate``), so the places that create them say so explicitly.
The spools' file primitives (durable appends, counts, locks) are here once for both.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import Iterator


def private_directory(path: Path) -> None:
    """Make ``path`` a folder only its owner can open.

    Missing folders (``path`` and any missing parent) are created with mode 0700.
    ``path`` itself, if it already exists and belongs to this user, is narrowed to
    0700 (a setup step with the shell's umask may have made it 0755). Existing
    parents are left as they are: they are not ours to change. Neither is a shared
    folder (sticky bit, like ``/tmp``): a database file placed directly in it must
    not lock every other user out of it.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    status = path.stat()
    shared = status.st_mode & stat.S_ISVTX
    if status.st_uid == os.geteuid() and status.st_mode & 0o077 and not shared:
        path.chmod(0o700)


#: Spool and lock files: the service user's alone.
PRIVATE_FILE_MODE = 0o600


def count_lines(path: Path) -> int:
    """Non-blank lines in a file (0 when it does not exist)."""
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except FileNotFoundError:
        return 0


def append_lines(path: Path, lines: bytes) -> None:
    """Append whole lines with fsync; a line left torn by a full disk is ended first."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            lines = b"\n" + lines
        view = memoryview(lines)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created private in a private folder); yields
    whether it was acquired (always, when ``blocking``). Closing the file releases it."""
    private_directory(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
