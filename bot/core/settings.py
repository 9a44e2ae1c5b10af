"""Process settings: read once from environment variables at each process's entry point.

Every setting is one field below, with its environment variable and its default written
once (``setting(...)``); :meth:`Settings.from_env` reads them all by type. A few
defaults follow from other settings (the database under ``VAR_DIR``, the web app's
own origin, the local URLs of the other processes): those are worked out in one place,
:meth:`Settings._derived`. Every variable is documented in ``.env.example`` and the README.

Reading settings creates nothing: the shared secrets under ``var/secrets`` are made by
an explicit step (``make setup``, the launcher, or ``python -m bot.core.make_secrets``,
:mod:`bot.core.secrets`), and a process whose secret is missing stops with that advice.
Each process reads its settings once, in :func:`bot.core.process.start`, and passes
them on (code Rasa instantiates itself asks :func:`bot.core.process.settings`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from bot.core.paths import REPO_ROOT
from bot.core.secrets import SECRETS, read_secret


def setting(env: str, default: Any) -> Any:
    """A field read from the environment variable ``env``, ``default`` when it is unset."""
    return field(default=default, metadata={"env": env})


def _path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def origin_of(url: str) -> str:
    """The browser origin (scheme://host[:port]) of a URL."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _origins(value: str, default: str) -> tuple[str, ...]:
    """Comma-separated origins; empty means the web app's own origin only. ``*`` is refused."""
    listed = [item.strip() for item in value.split(",") if item.strip()] or [default]
    if "*" in listed:
        raise ValueError("CORS_ALLOWED_ORIGINS: list the clinic's origins; '*' is not allowed")
    origins = tuple(dict.fromkeys(origin_of(item) for item in listed if origin_of(item)))
    if not origins:
        raise ValueError("CORS_ALLOWED_ORIGINS: no valid origin (expected e.g. https://www.example-clinic.org)")
    return origins


def _local_host(bind_host: str) -> str:
    """How a process on this machine reaches a server bound to ``BIND_HOST``."""
    host = bind_host.strip()
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def sync_db_url(url: str) -> str:
    """Return the synchronous SQLAlchemy form of a database URL (for Alembic and Rasa)."""
    for async_driver, sync_driver in (
        ("sqlite+aiosqlite://", "sqlite://"),
        ("postgresql+asyncpg://", "postgresql+psycopg2://"),
    ):
        if url.startswith(async_driver):
            return sync_driver + url[len(async_driver):]
    if url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url[len("postgres://"):]
    return url


def async_db_url(url: str) -> str:
    """Return the asyncio SQLAlchemy form of a database URL (for the escalation store)."""
    url = sync_db_url(url)
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    for prefix in ("postgresql+psycopg2://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


#: How an environment variable's text becomes a field's value, by the field's annotation.
PARSERS = {
    "str": lambda text: text.strip(),
    "int": lambda text: int(text),
    "float": lambda text: float(text),
    "bool": _flag,
    "Path": _path,
}


@dataclass(frozen=True)
class Settings:
    """Configuration of every process of the assistant.

    A field whose default is empty and that :meth:`_derived` fills (URLs of the local
    processes, the database, the secrets) has that default only when ``Settings`` is
    built directly, as tests do.
    """

    bind_host: str = setting("BIND_HOST", "127.0.0.1")
    rasa_port: int = setting("RASA_PORT", 5005)
    action_port: int = setting("ACTION_PORT", 5055)
    web_port: int = setting("WEB_PORT", 8000)
    #: Default: http://127.0.0.1:RASA_PORT.
    public_rasa_url: str = setting("PUBLIC_RASA_URL", "")
    #: Default: http://127.0.0.1:WEB_PORT.
    public_web_url: str = setting("PUBLIC_WEB_URL", "")
    #: Comma-separated in CORS_ALLOWED_ORIGINS; default: the web app's own origin.
    cors_origins: tuple[str, ...] = setting("CORS_ALLOWED_ORIGINS", ())
    rasa_api: bool = setting("RASA_API", False)
    # Shared secrets: from the environment, or the files under var/secrets (bot.core.secrets).
    rasa_jwt_secret: str = setting("RASA_JWT_SECRET", "")
    action_secret: str = setting("ACTION_SERVER_SECRET", "")
    session_secret: str = setting("SESSION_SECRET", "")
    staff_bridge_secret: str = setting("STAFF_BRIDGE_SECRET", "")
    #: Where the web app reaches the Rasa server (not the browser's PUBLIC_RASA_URL). Default: BIND_HOST:RASA_PORT.
    rasa_internal_url: str = setting("RASA_INTERNAL_URL", "")
    #: The Rasa process's staff-only listener: always loopback, never the patient-facing port.
    staff_bridge_port: int = setting("STAFF_BRIDGE_PORT", 5006)
    #: Default: http://127.0.0.1:STAFF_BRIDGE_PORT.
    staff_bridge_url: str = setting("STAFF_BRIDGE_URL", "")
    var_dir: Path = setting("VAR_DIR", REPO_ROOT / "var")
    clinic_config: Path = setting("CLINIC_CONFIG", REPO_ROOT / "clinic.yml")
    #: Default: SQLite in VAR_DIR/escalations.db.
    database_url: str = setting("DATABASE_URL", "")
    #: Default: the escalation store's PostgreSQL, or SQLite in VAR_DIR/tracker.db.
    tracker_store_url: str = setting("TRACKER_STORE_URL", "")
    redis_url: str = setting("REDIS_URL", "")
    #: Default: http://127.0.0.1:ACTION_PORT/webhook.
    action_server_url: str = setting("ACTION_SERVER_URL", "")
    max_message_chars: int = setting("MAX_MESSAGE_CHARS", 2000)
    smtp_host: str = setting("SMTP_HOST", "")
    smtp_port: int = setting("SMTP_PORT", 25)
    smtp_user: str = setting("SMTP_USER", "")
    smtp_password: str = setting("SMTP_PASSWORD", "")
    smtp_starttls: bool = setting("SMTP_STARTTLS", False)
    notify_from: str = setting("NOTIFY_FROM", "assistant@localhost")
    notify_email_to: str = setting("NOTIFY_EMAIL_TO", "")
    notify_webhook_url: str = setting("NOTIFY_WEBHOOK_URL", "")
    notify_webhook_secret: str = setting("NOTIFY_WEBHOOK_SECRET", "")
    notify_interval_seconds: float = setting("NOTIFY_INTERVAL_SECONDS", 5.0)
    log_level: str = setting("LOG_LEVEL", "INFO")
    sender_messages_per_minute: int = setting("RATE_SENDER_PER_MINUTE", 20)
    address_messages_per_minute: int = setting("RATE_ADDRESS_PER_MINUTE", 60)
    urgent_notify_alert_seconds: int = setting("URGENT_NOTIFY_ALERT_SECONDS", 300)
    escalations_per_hour_warning: int = setting("ESCALATIONS_PER_HOUR_WARNING", 20)
    store_timeout_seconds: float = setting("STORE_TIMEOUT_SECONDS", 8.0)
    #: Longest wait for the action server per call before the Rasa server answers without it.
    action_timeout_seconds: float = setting("ACTION_TIMEOUT_SECONDS", 3.0)
    #: Longest wait to record an emergency when the action server's health check is silent too
    #: (bot.assistant.servers.action_client): then it counts as hung and the Rasa server spools the record.
    urgent_action_timeout_seconds: float = setting("URGENT_ACTION_TIMEOUT_SECONDS", 1.0)
    #: Unverified urgent escalations one client address may create in an hour (bot.core.escalation.flood).
    urgent_per_address_per_hour: int = setting("URGENT_PER_ADDRESS_PER_HOUR", 5)
    staff_idle_minutes: int = setting("STAFF_IDLE_MINUTES", 15)
    staff_session_hours: int = setting("STAFF_SESSION_HOURS", 12)
    #: A reception display account (a trusted screen) is never signed out for being idle; its session ends this long after sign-in.
    staff_reception_session_days: int = setting("STAFF_RECEPTION_SESSION_DAYS", 30)
    login_max_failures: int = setting("LOGIN_MAX_FAILURES", 5)
    login_lockout_minutes: int = setting("LOGIN_LOCKOUT_MINUTES", 15)
    login_address_max_failures: int = setting("LOGIN_ADDRESS_MAX_FAILURES", 20)
    login_address_window_minutes: int = setting("LOGIN_ADDRESS_WINDOW_MINUTES", 15)
    #: Reverse proxies in front of the web app: the client is the address the outermost one saw.
    web_proxies_count: int = setting("WEB_PROXIES_COUNT", 0)
    #: Reverse proxies in front of the Rasa server (haproxy in `make run-cluster`): 0 ignores X-Forwarded-For,
    #: so a client talking to the Rasa port directly cannot pick the address its rate limit counts.
    trusted_proxy_count: int = setting("TRUSTED_PROXY_COUNT", 0)
    # SMS and WhatsApp through Twilio (bot.assistant.channels.twilio_sms): off until configured.
    twilio_account_sid: str = setting("TWILIO_ACCOUNT_SID", "")
    twilio_auth_token: str = setting("TWILIO_AUTH_TOKEN", "")
    twilio_from_number: str = setting("TWILIO_FROM_NUMBER", "")
    twilio_messaging_service_sid: str = setting("TWILIO_MESSAGING_SERVICE_SID", "")
    twilio_whatsapp_from: str = setting("TWILIO_WHATSAPP_FROM", "")
    twilio_whatsapp_template_sid: str = setting("TWILIO_WHATSAPP_TEMPLATE_SID", "")
    twilio_webhook_url: str = setting("TWILIO_WEBHOOK_URL", "")
    twilio_api_base_url: str = setting("TWILIO_API_BASE_URL", "https://api.twilio.com")
    sms_messages_per_minute: int = setting("SMS_MESSAGES_PER_MINUTE", 6)
    sms_daily_outbound_cap: int = setting("SMS_DAILY_OUTBOUND_CAP", 60)
    sms_send_interval_seconds: float = setting("SMS_SEND_INTERVAL_SECONDS", 1.0)
    #: Longest wait for the store before an incoming text is spooled and answered without it.
    sms_store_timeout_seconds: float = setting("SMS_STORE_TIMEOUT_SECONDS", 1.0)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, *, read_secrets: bool = True) -> "Settings":
        """Read every setting from ``env`` (default ``os.environ``); unset ones keep their default.

        ``read_secrets=False`` leaves the secrets empty: for the step that creates them.
        """
        env = os.environ if env is None else env
        given: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            name = item.metadata.get("env")
            text = env.get(name, "") if name else ""
            if not text.strip():
                continue  # unset (or empty, as docker-compose writes unset variables): the default
            if item.name == "cors_origins":
                given[item.name] = text
            else:
                given[item.name] = PARSERS[str(item.type)](text)
        return cls._derived(given, read_secrets)

    @classmethod
    def _derived(cls, given: dict[str, Any], read_secrets: bool) -> "Settings":
        """The defaults that follow from other settings, filled in where nothing was given."""
        base = cls(**{name: value for name, value in given.items() if name != "cors_origins"})
        var_dir = base.var_dir
        database_url = base.database_url or f"sqlite:///{var_dir / 'escalations.db'}"
        if database_url.startswith(("postgres://", "postgresql")):
            default_tracker = database_url
        else:
            default_tracker = f"sqlite:///{var_dir / 'tracker.db'}"
        public_web_url = (base.public_web_url or f"http://127.0.0.1:{base.web_port}").rstrip("/")
        secrets = {
            field_name: getattr(base, field_name) or read_secret(var_dir, file_name)
            for field_name, file_name in SECRETS.items()
            if read_secrets
        }
        return dataclasses.replace(
            base,
            **secrets,
            public_rasa_url=base.public_rasa_url or f"http://127.0.0.1:{base.rasa_port}",
            public_web_url=public_web_url,
            cors_origins=_origins(given.get("cors_origins", ""), default=public_web_url),
            rasa_internal_url=(
                base.rasa_internal_url or f"http://{_local_host(base.bind_host)}:{base.rasa_port}"
            ).rstrip("/"),
            staff_bridge_url=(base.staff_bridge_url or f"http://127.0.0.1:{base.staff_bridge_port}").rstrip("/"),
            database_url=database_url,
            tracker_store_url=base.tracker_store_url or default_tracker,
            action_server_url=base.action_server_url or f"http://127.0.0.1:{base.action_port}/webhook",
            log_level=base.log_level.upper(),
            twilio_api_base_url=base.twilio_api_base_url.rstrip("/"),
        )

    @property
    def store_url(self) -> str:
        """Async URL of the escalation store."""
        return async_db_url(self.database_url)

    @property
    def staff_cookie_secure(self) -> bool:
        """Whether the dashboard's cookies are ``Secure``: the dashboard is served over HTTPS."""
        return self.public_web_url.lower().startswith("https://")

    @property
    def twilio_configured(self) -> bool:
        """Whether the SMS/WhatsApp channel has what it needs: account, token, a sender and the webhook URL."""
        sender = self.twilio_from_number or self.twilio_messaging_service_sid or self.twilio_whatsapp_from
        return bool(self.twilio_account_sid and self.twilio_auth_token and sender and self.twilio_webhook_url)

    @property
    def spool_dir(self) -> Path:
        """Folder of escalations that could not be written to the database yet."""
        return self.var_dir / "spool"
