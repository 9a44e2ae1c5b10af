"""Private folders: everything under ``var/`` belongs to the service user alone.

Each process also runs with ``umask 0077`` (:mod:`bot.process`), but folders may be
made by a setup step run from a shell, or by code that runs outside a process of
ours (tests, ``make migrate``), so the places that create them say so explicitly.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


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
