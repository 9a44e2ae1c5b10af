"""What each of the three processes does first, before it reads or writes anything.

* ``umask 0o077``: everything the process creates under ``var/`` (SQLite
  files, spool, generated endpoints, secrets, logs) is private to the service
  user, whatever the shell or service manager set; ``var/`` itself is 0700.
* Logging goes through :mod:`bot.core.privacy` on every handler.
* Rasa's telemetry is off unless a deployer turns it on explicitly: a clinic's
  assistant sends nothing about its use to third parties by default.
* The settings are read here, once per process (:meth:`Settings.from_env` is called
  nowhere else), and passed on. Code that Rasa instantiates itself (the channels from
  ``credentials.yml``, the NLG) cannot be handed them, so it asks :func:`settings`.
"""

from __future__ import annotations

import os

from bot.core import privacy
from bot.core.files import private_directory
from typing import Optional

from bot.core.settings import Settings

PRIVATE_UMASK = 0o077

QUIET_LIBRARIES = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
}


_settings: Optional[Settings] = None
_read_secrets = True


def start(*, read_secrets: bool = True) -> Settings:
    """Private file mode, library defaults and filtered logging; returns the process settings.

    ``read_secrets=False`` for a process that needs none (the migration step).
    """
    global _settings, _read_secrets
    _read_secrets = read_secrets
    os.umask(PRIVATE_UMASK)
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    _settings = None  # read afresh: the process starts here
    privacy.configure(settings().log_level)
    private_directory(settings().var_dir)
    return settings()


def settings() -> Settings:
    """This process's settings: those :func:`start` read, or (a process Rasa or a test drives
    without :func:`start`) read from the environment on first use and kept."""
    global _settings
    if _settings is None:
        _settings = Settings.from_env(read_secrets=_read_secrets)
    return _settings


def use_settings(given: Optional[Settings]) -> None:
    """Replace this process's settings (tests); ``None`` makes the next :func:`settings` read them again."""
    global _settings
    _settings = given
