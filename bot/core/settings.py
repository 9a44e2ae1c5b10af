"""Process settings, read once from environment variables and passed in explicitly.

Every variable is documented in ``.env.example`` and the README. Nothing here
connects to anything: it only reads the environment.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

from bot.core.files import private_directory

REPO_ROOT = Path(__file__).resolve().parents[2]


def _path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def _read_or_create_secret(path: Path) -> str:
    """Return the secret stored at ``path``, creating a random one (mode 0600) if missing.

    Several processes may start at once: whoever creates the file first wins and the
    others read it.
    """
    if not path.exists():
        private_directory(path.parent)
        # Written whole to a private temporary file, then linked into place: a reader
        # never sees a half-written secret, and only one creator wins.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(32))
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text(encoding="utf-8").strip()


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


def _local_host(env: Mapping[str, str]) -> str:
    """How a process on this machine reaches a server bound to ``BIND_HOST``."""
    host = env.get("BIND_HOST", "127.0.0.1").strip()
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


@dataclass(frozen=True)
class Settings:
    """Configuration of every process of the assistant."""

    bind_host: str = "127.0.0.1"
    rasa_port: int = 5005
    action_port: int = 5055
    web_port: int = 8000
    public_rasa_url: str = ""
    public_web_url: str = ""
    cors_origins: tuple[str, ...] = ()
    rasa_api: bool = False
    rasa_jwt_secret: str = ""
    action_secret: str = ""
    session_secret: str = ""
    staff_bridge_secret: str = ""
    rasa_internal_url: str = ""
    staff_bridge_port: int = 5006
    staff_bridge_url: str = "http://127.0.0.1:5006"
    var_dir: Path = REPO_ROOT / "var"
    clinic_config: Path = REPO_ROOT / "clinic.yml"
    database_url: str = ""
    tracker_store_url: str = ""
    redis_url: str = ""
    action_server_url: str = ""
    max_message_chars: int = 2000
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    notify_from: str = "assistant@localhost"
    notify_email_to: str = ""
    notify_webhook_url: str = ""
    notify_webhook_secret: str = ""
    notify_interval_seconds: float = 5.0
    log_level: str = "INFO"
    sender_messages_per_minute: int = 20
    address_messages_per_minute: int = 60
    urgent_notify_alert_seconds: int = 300
    escalations_per_hour_warning: int = 20
    store_timeout_seconds: float = 8.0
    #: Longest wait for the action server per call before the Rasa server answers without it.
    action_timeout_seconds: float = 3.0
    #: Longest wait for the action server recording an emergency when its health check does not answer either.
    urgent_action_timeout_seconds: float = 1.0
    #: Unverified urgent escalations one client address may create in an hour (bot/core/escalation/flood.py).
    urgent_per_address_per_hour: int = 5
    staff_idle_minutes: int = 15
    staff_session_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    login_address_max_failures: int = 20
    login_address_window_minutes: int = 15
    web_proxies_count: int = 0
    # SMS and WhatsApp through Twilio (bot/assistant/channels/twilio_sms.py): off until configured.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_whatsapp_from: str = ""
    twilio_whatsapp_template_sid: str = ""
    twilio_webhook_url: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    sms_messages_per_minute: int = 6
    sms_daily_outbound_cap: int = 60
    sms_send_interval_seconds: float = 1.0
    #: Longest wait for the store before an incoming text is spooled and answered without it.
    sms_store_timeout_seconds: float = 1.5

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        """Read settings from ``env`` (default ``os.environ``), filling working defaults."""
        env = os.environ if env is None else env
        var_dir = _path(env.get("VAR_DIR", "var"))
        database_url = env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'escalations.db'}"
        if database_url.startswith(("postgres://", "postgresql")):
            default_tracker = database_url
        else:
            default_tracker = f"sqlite:///{var_dir / 'tracker.db'}"
        action_port = int(env.get("ACTION_PORT", "5055"))
        rasa_port = int(env.get("RASA_PORT", "5005"))
        web_port = int(env.get("WEB_PORT", "8000"))
        staff_bridge_port = int(env.get("STAFF_BRIDGE_PORT", "5006"))
        public_web_url = env.get("PUBLIC_WEB_URL", f"http://127.0.0.1:{web_port}").rstrip("/")
        secrets_dir = var_dir / "secrets"
        return cls(
            bind_host=env.get("BIND_HOST", "127.0.0.1"),
            rasa_port=rasa_port,
            action_port=action_port,
            web_port=web_port,
            public_rasa_url=env.get("PUBLIC_RASA_URL", f"http://127.0.0.1:{rasa_port}"),
            public_web_url=public_web_url,
            cors_origins=_origins(env.get("CORS_ALLOWED_ORIGINS", ""), default=public_web_url),
            rasa_api=_flag(env.get("RASA_API", "false")),
            rasa_jwt_secret=env.get("RASA_JWT_SECRET") or _read_or_create_secret(secrets_dir / "rasa_jwt_secret"),
            action_secret=env.get("ACTION_SERVER_SECRET") or _read_or_create_secret(secrets_dir / "action_secret"),
            session_secret=env.get("SESSION_SECRET") or _read_or_create_secret(secrets_dir / "session_secret"),
            staff_bridge_secret=env.get("STAFF_BRIDGE_SECRET")
            or _read_or_create_secret(secrets_dir / "staff_bridge_secret"),
            # Where the web app reaches the Rasa server's staff bridge (not the browser's PUBLIC_RASA_URL).
            rasa_internal_url=env.get("RASA_INTERNAL_URL", f"http://{_local_host(env)}:{rasa_port}").rstrip("/"),
            # The Rasa process's staff-only listener: always loopback, never the patient-facing port.
            staff_bridge_port=staff_bridge_port,
            staff_bridge_url=env.get("STAFF_BRIDGE_URL", f"http://127.0.0.1:{staff_bridge_port}").rstrip("/"),
            var_dir=var_dir,
            clinic_config=_path(env.get("CLINIC_CONFIG", "clinic.yml")),
            database_url=database_url,
            tracker_store_url=env.get("TRACKER_STORE_URL") or default_tracker,
            redis_url=env.get("REDIS_URL", ""),
            action_server_url=env.get(
                "ACTION_SERVER_URL", f"http://127.0.0.1:{action_port}/webhook"
            ),
            max_message_chars=int(env.get("MAX_MESSAGE_CHARS", "2000")),
            smtp_host=env.get("SMTP_HOST", ""),
            smtp_port=int(env.get("SMTP_PORT", "25")),
            smtp_user=env.get("SMTP_USER", ""),
            smtp_password=env.get("SMTP_PASSWORD", ""),
            smtp_starttls=_flag(env.get("SMTP_STARTTLS", "false")),
            notify_from=env.get("NOTIFY_FROM", "assistant@localhost"),
            notify_email_to=env.get("NOTIFY_EMAIL_TO", ""),
            notify_webhook_url=env.get("NOTIFY_WEBHOOK_URL", ""),
            notify_webhook_secret=env.get("NOTIFY_WEBHOOK_SECRET", ""),
            notify_interval_seconds=float(env.get("NOTIFY_INTERVAL_SECONDS", "5")),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            sender_messages_per_minute=int(env.get("RATE_SENDER_PER_MINUTE", "20")),
            address_messages_per_minute=int(env.get("RATE_ADDRESS_PER_MINUTE", "60")),
            urgent_notify_alert_seconds=int(env.get("URGENT_NOTIFY_ALERT_SECONDS", "300")),
            escalations_per_hour_warning=int(env.get("ESCALATIONS_PER_HOUR_WARNING", "20")),
            store_timeout_seconds=float(env.get("STORE_TIMEOUT_SECONDS", "8")),
            action_timeout_seconds=float(env.get("ACTION_TIMEOUT_SECONDS", "3")),
            urgent_action_timeout_seconds=float(env.get("URGENT_ACTION_TIMEOUT_SECONDS", "1")),
            urgent_per_address_per_hour=int(env.get("URGENT_PER_ADDRESS_PER_HOUR", "5")),
            staff_idle_minutes=int(env.get("STAFF_IDLE_MINUTES", "15")),
            staff_session_hours=int(env.get("STAFF_SESSION_HOURS", "12")),
            login_max_failures=int(env.get("LOGIN_MAX_FAILURES", "5")),
            login_lockout_minutes=int(env.get("LOGIN_LOCKOUT_MINUTES", "15")),
            login_address_max_failures=int(env.get("LOGIN_ADDRESS_MAX_FAILURES", "20")),
            login_address_window_minutes=int(env.get("LOGIN_ADDRESS_WINDOW_MINUTES", "15")),
            # Reverse proxies in front of the web app: the client is the address the outermost one saw.
            web_proxies_count=int(env.get("WEB_PROXIES_COUNT", "0")),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", "").strip(),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", "").strip(),
            twilio_from_number=env.get("TWILIO_FROM_NUMBER", "").strip(),
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", "").strip(),
            twilio_whatsapp_from=env.get("TWILIO_WHATSAPP_FROM", "").strip(),
            twilio_whatsapp_template_sid=env.get("TWILIO_WHATSAPP_TEMPLATE_SID", "").strip(),
            twilio_webhook_url=env.get("TWILIO_WEBHOOK_URL", "").strip(),
            twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or "https://api.twilio.com").strip().rstrip("/"),
            sms_messages_per_minute=int(env.get("SMS_MESSAGES_PER_MINUTE", "6")),
            sms_daily_outbound_cap=int(env.get("SMS_DAILY_OUTBOUND_CAP", "60")),
            sms_send_interval_seconds=float(env.get("SMS_SEND_INTERVAL_SECONDS", "1")),
            sms_store_timeout_seconds=float(env.get("SMS_STORE_TIMEOUT_SECONDS", "1.5")),
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
