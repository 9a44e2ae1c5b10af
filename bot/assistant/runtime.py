"""Rasa's endpoints configuration and model, derived from the settings.

Rasa reads stores and the action server from an endpoints file. Rather than ask
deployers to keep that file in step with ``DATABASE_URL`` and ``REDIS_URL``, the
Rasa server's entry point writes it from the settings each time it starts, so
one environment variable switches SQLite to PostgreSQL or adds Redis. The file
also carries the shared secret Rasa sends to the action server
(:data:`ACTION_SECRET_HEADER`), which is why it is private (0600).

It also pins the Rasa process's thread pools (:func:`pin_threads`) to ``RASA_THREADS``
(default 1): TensorFlow, OpenMP and onnxruntime each size their pools to the machine's
cores by default, so two replicas on a 2-core machine ran four pools of two and took
turns on the cores mid-message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, MutableMapping

import yaml
from sqlalchemy.engine import make_url

from bot.core.files import private_directory
from bot.core.store.db import prepare_sqlite_file, tune_sqlite_connections
from bot.core.settings import REPO_ROOT, Settings, sync_db_url

ACTION_SECRET_HEADER = "X-Action-Secret"
"""Header carrying ``ACTION_SERVER_SECRET`` on every call from Rasa to the action server."""


THREADS_VARIABLE = "RASA_THREADS"
"""Threads each thread pool of a Rasa process may use (TensorFlow, OpenMP, onnxruntime)."""

#: The variables TensorFlow (read by Rasa's ``setup_tf_environment``) and OpenMP/MKL (read when
#: their libraries load) take their pool sizes from.
THREAD_VARIABLES = (
    "TF_INTRA_OP_PARALLELISM_THREADS",
    "TF_INTER_OP_PARALLELISM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def threads(env: MutableMapping[str, str] | None = None) -> int:
    """``RASA_THREADS`` (default 1): the size of each thread pool in a Rasa process."""
    raw = (os.environ if env is None else env).get(THREADS_VARIABLE, "").strip() or "1"
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_VARIABLE} must be a whole number of threads, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{THREADS_VARIABLE} must be at least 1")
    return value


def pin_threads(env: MutableMapping[str, str] | None = None) -> int:
    """Size TensorFlow's, OpenMP's and PyTorch's (if installed) thread pools from ``RASA_THREADS``.

    Call it before TensorFlow is imported: the environment variables are read when the
    libraries load and when Rasa sets TensorFlow up (``setup_tf_environment``). A variable
    already set explicitly wins. onnxruntime reads :func:`threads` when the sentence
    featurizer opens its session. Returns the thread count.
    """
    env = os.environ if env is None else env
    count = threads(env)
    for name in THREAD_VARIABLES:
        env.setdefault(name, str(count))
    try:  # not in requirements.lock today; pinned here should a dependency bring it in
        import torch  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        torch.set_num_threads(count)
    return count


def newest_model(models_dir: Path = REPO_ROOT / "models") -> Path:
    """The newest trained model archive."""
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    if not models:
        raise FileNotFoundError(f"no trained model in {models_dir}: run `make train`")
    return models[-1]


def tracker_store(url: str) -> dict[str, Any]:
    """Rasa ``SQLTrackerStore`` settings for a database URL."""
    parsed = make_url(sync_db_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return {"type": "SQL", "dialect": "sqlite", "db": parsed.database}
    config: dict[str, Any] = {
        "type": "SQL",
        "dialect": "postgresql" if backend == "postgresql" else backend,
        "url": parsed.host,
        "db": parsed.database,
    }
    if parsed.port:
        config["port"] = parsed.port
    if parsed.username:
        config["username"] = parsed.username
    if parsed.password:
        config["password"] = str(parsed.password)
    return config


def prepare_tracker_store(url: str) -> None:
    """A SQLite tracker store: file private and in WAL mode, connections ``synchronous=NORMAL``.

    Rasa's ``SQLTrackerStore`` opens the file with SQLite's defaults (rollback journal,
    ``synchronous=FULL``): each turn's save waited for fsyncs. Call before Rasa opens the store.
    """
    parsed = make_url(sync_db_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        prepare_sqlite_file(Path(parsed.database))
        tune_sqlite_connections()


def lock_store(url: str) -> dict[str, Any]:
    """Rasa ``RedisLockStore`` settings for a Redis URL."""
    parsed = make_url(url.replace("rediss://", "redis://", 1))
    config: dict[str, Any] = {
        "type": "redis",
        "url": parsed.host or "localhost",
        "port": parsed.port or 6379,
        "db": int(parsed.database or 1),
        "key_prefix": "dry_needling",
        "use_ssl": url.startswith("rediss://"),
    }
    if parsed.password:
        config["password"] = str(parsed.password)
    return config


def endpoints(settings: Settings) -> dict[str, Any]:
    """The endpoints configuration for these settings."""
    config: dict[str, Any] = {
        "action_endpoint": {
            "url": settings.action_server_url,
            "headers": {ACTION_SECRET_HEADER: settings.action_secret},
        },
        "nlg": {"type": "bot.assistant.nlg.ClinicNLG", "clinic_config": str(settings.clinic_config)},
        "tracker_store": tracker_store(settings.tracker_store_url),
    }
    if settings.redis_url:
        config["lock_store"] = lock_store(settings.redis_url)
    return config


def write_endpoints(settings: Settings, path: Path | None = None) -> Path:
    """Write the endpoints file (mode 0600: it holds the action secret and may hold a database password)."""
    path = path or settings.var_dir / "runtime" / "endpoints.yml"
    private_directory(path.parent)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(
        "# Written by bot/assistant/runtime.py from the environment; edits are overwritten.\n"
        + yaml.safe_dump(endpoints(settings), sort_keys=False),
        encoding="utf-8",
    )
    return path
