"""The shared secrets under ``VAR_DIR/secrets``: made once by an explicit step, then only read.

Four secrets let the processes trust one another: the Rasa server's JWT secret, the
secret Rasa sends the action server, the dashboard's session key and the staff bridge's
secret. Each may be given in the environment instead (``RASA_JWT_SECRET`` ...); those
not given are random files (mode 0600) that ``make setup``, the launcher
(:mod:`bot.launch`) or ``python -m bot.core.make_secrets`` create. Reading settings never
creates them (:class:`bot.core.settings.Settings`): a process started before that step
stops with the advice to run it.
"""

from __future__ import annotations

import os
import secrets as random_tokens
import tempfile
from pathlib import Path

from bot.core.files import private_directory

#: Settings field -> file name under VAR_DIR/secrets.
SECRETS = {
    "rasa_jwt_secret": "rasa_jwt_secret",
    "action_secret": "action_secret",
    "session_secret": "session_secret",
    "staff_bridge_secret": "staff_bridge_secret",
}


class MissingSecret(RuntimeError):
    """A secret file the settings need has not been created."""


def folder(var_dir: Path) -> Path:
    return var_dir / "secrets"


def read_secret(var_dir: Path, name: str) -> str:
    """The secret ``name``; :class:`MissingSecret` (with the step to run) when it was never created."""
    path = folder(var_dir) / name
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if not value:
        raise MissingSecret(
            f"the secret {name} is missing from {folder(var_dir)}: run `make setup` "
            "(or `python -m bot.core.make_secrets`), or set it in the environment"
        )
    return value


def ensure(var_dir: Path) -> list[str]:
    """Create every secret file that is missing; returns the names created.

    Several processes may run this at once: each secret is written whole to a private
    temporary file and linked into place, so a reader never sees half a secret and only
    one creator wins.
    """
    created = []
    directory = folder(var_dir)
    private_directory(directory)
    for name in SECRETS.values():
        path = directory / name
        if path.exists():
            continue
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".secret-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(random_tokens.token_urlsafe(32))
            os.link(tmp, path)
            created.append(name)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return created
