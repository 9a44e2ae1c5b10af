"""The shared secrets under ``VAR_DIR/secrets``: made once by an explicit step, then only read.

Four secrets let the processes trust one another: the Rasa server's JWT secret, the
secret Rasa sends the action server, the dashboard's session key and the staff bridge's
secret. Each may be given in the environment instead (``RASA_JWT_SECRET`` ...); those
not given are random files (mode 0600) that ``make setup``, the launcher
(:mod:`bot.launch`) or ``python -m bot.core.make_secrets`` create. Reading settings never
creates them (:class:`bot.core.settings.Settings`): a process started before that step
stops with the advice to run it.

The same step makes the dashboard's VAPID key (:data:`VAPID_PRIVATE_KEY`): an EC P-256
private key in PEM that signs Web Push messages to staff browsers
(:mod:`bot.dashboard.notify.web_push`). Browsers subscribed with its public key, so it is
never replaced: a new key would silently orphan every subscription.
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


#: The Web Push (VAPID, RFC 8292) signing key under VAR_DIR/secrets: EC P-256, PKCS#8 PEM.
VAPID_PRIVATE_KEY = "vapid_private_key.pem"


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
    directory = folder(var_dir)
    private_directory(directory)
    created = [name for name in SECRETS.values() if _create(directory / name, random_tokens.token_urlsafe(32))]
    vapid = directory / VAPID_PRIVATE_KEY
    if not vapid.exists() and _create(vapid, new_vapid_private_key()):
        created.append(VAPID_PRIVATE_KEY)
    return created


def vapid_private_key_path(var_dir: Path) -> Path:
    """Where the VAPID signing key is (it may not exist yet: see :func:`ensure`)."""
    return folder(var_dir) / VAPID_PRIVATE_KEY


def new_vapid_private_key() -> str:
    """A new EC P-256 private key, PKCS#8 PEM, as VAPID signs with (RFC 8292, ES256)."""
    # Imported here: only the setup step makes keys, and cryptography is in both environments.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _create(path: Path, value: str) -> bool:
    """Write ``value`` to ``path`` unless it exists; whether this call created it."""
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
