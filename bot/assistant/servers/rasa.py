"""The Rasa server: ``python -m bot.assistant.servers.rasa`` (what ``rasa run`` does, with our settings).

It writes the endpoints file from the settings, then serves the newest model
in-process with Rasa's own ``serve_application``:

* on ``BIND_HOST``/``RASA_PORT``, channels from ``credentials.yml``; the staff
  bridges among them answer only on ``127.0.0.1:STAFF_BRIDGE_PORT``
  (:mod:`bot.assistant.servers.staff_port`), and ``/`` no longer names Rasa and its version;
* with no app-wide CORS: the channels apply the origin allow-list themselves,
  once (``bot/assistant/channels``);
* with the action server called through :mod:`bot.assistant.servers.action_client`: a short
  timeout (``ACTION_TIMEOUT_SECONDS``; ``URGENT_ACTION_TIMEOUT_SECONDS`` for recording an
  emergency while the action server's health check is silent too), and an emergency spooled
  by this process itself when the action server is down, hung or failing;
* with Rasa's Redis lock store (``REDIS_URL``) failing open to a lock in this process while
  Redis does not answer (:mod:`bot.assistant.servers.lock_store`), and with Sanic trusting
  ``TRUSTED_PROXY_COUNT`` reverse proxies' ``X-Forwarded-For`` (haproxy in ``make run-cluster``);
* with the HTTP API only when ``RASA_API=true`` (nothing in ``make run`` needs
  it; the benchmark does), and then JWT-protected only
  (:mod:`bot.assistant.servers.rasa_api`): no ``--auth-token``, which Rasa reads from URLs.
"""

from __future__ import annotations

import logging
from asyncio import AbstractEventLoop
from typing import Any

from sanic import Sanic

from bot.assistant.runtime import newest_model, pin_threads, prepare_tracker_store, write_endpoints
from bot.assistant.servers.rasa_api import JWT_METHOD
from bot.assistant.servers.staff_port import StaffListener
from bot.core import privacy, process
from bot.core.settings import REPO_ROOT, Settings

# Named explicitly: run with ``python -m``, ``__name__`` would be "__main__".
logger = logging.getLogger("bot.assistant.servers.rasa")

CREDENTIALS = REPO_ROOT / "credentials.yml"
# Sanic reads up to 100 MB of a request body before a route sees it. Patient
# messages are capped far lower by the channels (64 KiB); 1 MiB leaves room for
# the HTTP API's tracker and event calls when it is on.
MAX_REQUEST_BYTES = 1024 * 1024


def api_options(settings: Settings) -> dict[str, Any]:
    """``serve_application`` options for the HTTP API: off, or on with JWT and no URL token."""
    if not settings.rasa_api:
        return {"enable_api": False}
    return {"enable_api": True, "auth_token": None, "jwt_secret": settings.rasa_jwt_secret, "jwt_method": JWT_METHOD}


async def limit_request_size(app: Sanic, _loop: AbstractEventLoop) -> None:
    """Refuse (413) bodies larger than :data:`MAX_REQUEST_BYTES` before they are read whole."""
    app.config.REQUEST_MAX_SIZE = MAX_REQUEST_BYTES


def trust_proxies(count: int) -> Any:
    """A listener telling Sanic how many reverse proxies stand before it (``TRUSTED_PROXY_COUNT``).

    Then ``request.remote_addr`` is the address the outermost proxy saw (the last ``count``
    X-Forwarded-For entries are the proxies' own), and the channels' rate limits count the
    patient, not haproxy. At 0 (the default) Sanic ignores the header: a client that reaches
    the Rasa port directly cannot choose its address.
    """

    async def listener(app: Sanic, _loop: AbstractEventLoop) -> None:
        if count > 0:
            app.config.PROXIES_COUNT = count

    return listener


async def reinstall_privacy_filter(_app: Sanic, _loop: AbstractEventLoop) -> None:
    """Sanic and Rasa add log handlers while starting: filter those too."""
    added = privacy.install()
    if added:
        logger.debug("privacy filter installed on %d late log handlers", added)


def guarded_action_endpoint(endpoint: Any, settings: Settings) -> Any:
    """The action endpoint with a short timeout and the Rasa-side fallback (:mod:`bot.assistant.servers.action_client`)."""
    from bot.core.escalation.spool import Spool
    from bot.assistant.servers.action_client import GuardedActionEndpoint, LocalFallback

    if endpoint is None:
        return None
    return GuardedActionEndpoint(
        endpoint, settings.action_timeout_seconds, LocalFallback(Spool(settings.spool_dir)),
        urgent_timeout=settings.urgent_action_timeout_seconds,
    )


def main() -> None:
    """Serve the assistant's Rasa model until stopped."""
    settings = process.start()
    pin_threads()  # before TensorFlow loads: it sizes its pools from the environment
    # Imported here: importing Rasa pulls in TensorFlow, which reads the
    # environment prepared by process.start().
    from rasa.core.run import serve_application
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog
    from rasa.utils.tensorflow.environment import setup_tf_environment

    from bot.assistant.servers.lock_store import fail_open

    level = logging.getLevelName(settings.log_level)
    configure_logging_and_warnings(level, warn_only_once=True, filter_repeated_logs=True)
    configure_structlog(level)
    setup_tf_environment()
    privacy.install()
    prepare_tracker_store(settings.tracker_store_url)
    endpoints = AvailableEndpoints.read_endpoints(str(write_endpoints(settings)))
    endpoints.action = guarded_action_endpoint(endpoints.action, settings)
    endpoints.lock_store = fail_open(endpoints.lock_store)  # Redis down: turns go on (servers/lock_store.py)
    serve_application(
        model_path=str(newest_model()),
        interface=settings.bind_host,
        port=settings.rasa_port,
        credentials=str(CREDENTIALS),
        cors=None,
        endpoints=endpoints,
        server_listeners=[
            (limit_request_size, "before_server_start"),
            (trust_proxies(settings.trusted_proxy_count), "before_server_start"),
            (reinstall_privacy_filter, "before_server_start"),
            (reinstall_privacy_filter, "after_server_start"),
            # The staff bridges on their own loopback port, and "/" without Rasa's banner.
            *StaffListener(settings.staff_bridge_port).listeners(),
        ],
        **api_options(settings),
    )


if __name__ == "__main__":
    main()
