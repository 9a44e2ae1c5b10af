"""Start the whole assistant: Rasa server, action server and web app, and keep them running.

``python -m bot.launch`` (what ``make run`` does) runs all three in the
foreground. If one of them dies, :class:`Supervisor` starts it again after a
pause that doubles with each quick failure (1 s up to 60 s) and resets once it
has run healthily for a while; every restart is logged. Ctrl-C or SIGTERM stops
all of them cleanly. In production, systemd does the same job with the units in
``deploy/systemd/``. The end-to-end tests use :class:`Stack` to start the same
processes on free ports.

The web app runs on the interpreter of its own environment, ``.venv-web``
(Rasa pins an old aiohttp in ``.venv``; the web app needs a current one):
``WEB_PYTHON`` in the environment names another interpreter.

No secret is ever a command-line argument: each process reads its settings and
secrets from the environment and ``var/secrets``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

from bot.assistant.runtime import newest_model
from bot.core import process
from bot.core import secrets
from bot.core.clinic import Clinic, ClinicConfigError, load_clinic
from bot.core.settings import REPO_ROOT, Settings
from bot.dashboard.web.alert_route import route_configured

__all__ = ["Backoff", "Service", "Stack", "Supervisor", "free_port", "newest_model"]

# Named explicitly: run with ``python -m``, ``__name__`` would be "__main__".
logger = logging.getLogger("bot.launch")

PYTHON = sys.executable
WEB_VENV = REPO_ROOT / ".venv-web"
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_python(env: Mapping[str, str]) -> str:
    """The interpreter that runs the web app: ``WEB_PYTHON`` if set, else ``.venv-web/bin/python``."""
    return env.get("WEB_PYTHON") or str(WEB_VENV / "bin" / "python")


def local_address(bind_host: str) -> str:
    """Where this machine reaches a server bound to ``bind_host``."""
    if bind_host in WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{bind_host}]" if ":" in bind_host else bind_host


@dataclass
class Service:
    """One child process and how to tell it is ready."""

    name: str
    command: list[str]
    health_url: str
    process: Optional[subprocess.Popen] = None
    log_path: Optional[Path] = None
    started_at: float = 0.0

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None


@dataclass
class Stack:
    """The three processes of the assistant, started with one environment."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    log_dir: Optional[Path] = None

    def __post_init__(self) -> None:
        self.env = {
            **self.env,
            "PYTHONPATH": str(REPO_ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
        if "RASA_PORT" in self.env and "STAFF_BRIDGE_PORT" not in self.env:
            # A caller that picks its own ports (the tests run several stacks) gets a free staff port
            # too; the Rasa server and the web app read the same environment, so they agree on it.
            self.env["STAFF_BRIDGE_PORT"] = str(free_port())
        # The shared secrets are made here, before any process reads its settings (bot.core.secrets).
        secrets.ensure(Settings.from_env(self.env, read_secrets=False).var_dir)
        self.settings = Settings.from_env(self.env)
        s = self.settings
        host = local_address(s.bind_host)
        self.services = {
            "rasa": Service("rasa", [PYTHON, "-m", "bot.assistant.servers.rasa"], f"http://{host}:{s.rasa_port}/"),
            "actions": Service(
                "actions", [PYTHON, "-m", "bot.assistant.servers.actions"], f"http://{host}:{s.action_port}/health"
            ),
            "web": Service("web", [web_python(self.env), "-m", "bot.dashboard.web"], f"http://{host}:{s.web_port}/healthz"),
        }

    def start(self, *names: str, env: Optional[Mapping[str, str]] = None) -> None:
        """Start the named services (default: all); ``env`` overrides variables for this start only."""
        for name in names or tuple(self.services):
            service = self.services[name]
            interpreter = service.command[0]
            if not (os.path.isfile(interpreter) and os.access(interpreter, os.X_OK)):
                hint = " (the web app's environment: `make setup` installs it)" if name == "web" else ""
                raise RuntimeError(f"cannot start {name}: no interpreter at {interpreter}{hint}")
            stdout = None
            if self.log_dir:
                self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                service.log_path = self.log_dir / f"{name}.log"
                stdout = os.fdopen(os.open(service.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
            try:
                service.process = subprocess.Popen(
                    service.command,
                    cwd=REPO_ROOT,
                    env={**self.env, **(env or {})},
                    stdout=stdout,
                    stderr=subprocess.STDOUT if stdout else None,
                    start_new_session=True,
                )
            finally:
                if stdout:
                    stdout.close()
            service.started_at = time.monotonic()
            logger.info("started %s (pid %d)", name, service.process.pid)

    def wait_ready(self, timeout: float = 180.0, *names: str) -> None:
        """Block until the named services answer their health checks."""
        deadline = time.monotonic() + timeout
        for name in names or tuple(self.services):
            service = self.services[name]
            while True:
                if service.process and service.process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {service.process.returncode}")
                try:
                    with urllib.request.urlopen(service.health_url, timeout=2) as reply:
                        if reply.status == 200:
                            break
                except urllib.error.HTTPError as error:
                    if error.code == 503 and name == "web":
                        # Up, but /healthz reports "degraded" (say, an urgent notification nobody
                        # could deliver): started all the same; the report says what is wrong.
                        logger.warning("%s answers but reports degraded health", name)
                        break
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout:.0f}s")
                time.sleep(0.5)
            logger.info("%s is ready", name)

    def stop(self, *names: str, timeout: float = 20.0) -> None:
        """Stop the named services (default: all): SIGTERM, then SIGKILL."""
        for name in names or tuple(self.services):
            process = self.services[name].process
            if not process or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
        for name in names or tuple(self.services):
            process = self.services[name].process
            if not process:
                continue
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def restart(self, name: str, timeout: float = 180.0, env: Optional[Mapping[str, str]] = None) -> None:
        """Stop and start one service on the same port (``env`` overrides variables for this start)."""
        self.stop(name)
        self.start(name, env=env)
        self.wait_ready(timeout, name)

    def first_exited(self) -> Optional[str]:
        """The name of a service that has exited, if any."""
        for name, service in self.services.items():
            if service.process and service.process.poll() is not None:
                return name
        return None


@dataclass(frozen=True)
class Backoff:
    """Pause before restarting a process that died: doubling, capped, reset after a healthy run."""

    initial: float = 1.0
    maximum: float = 60.0
    healthy_after: float = 120.0

    def delay(self, failures: int) -> float:
        """The pause before the restart that follows ``failures`` quick failures in a row (1, 2, ...)."""
        return min(self.maximum, self.initial * 2 ** max(0, failures - 1))


@dataclass
class Supervisor:
    """Restarts the stack's processes when they die."""

    stack: Stack
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    failures: dict[str, int] = field(default_factory=dict)
    restart_at: dict[str, float] = field(default_factory=dict)

    def check(self) -> None:
        """Notice processes that died and restart those whose pause is over."""
        now = self.clock()
        for name, service in self.stack.services.items():
            if name in self.restart_at:
                if now >= self.restart_at[name]:
                    del self.restart_at[name]
                    logger.warning("restarting %s (attempt %d)", name, self.failures[name])
                    self.stack.start(name)
                continue
            if service.process is None or service.process.poll() is None:
                continue
            ran_for = now - service.started_at
            quick = ran_for < self.backoff.healthy_after
            self.failures[name] = self.failures.get(name, 0) + 1 if quick else 1
            delay = self.backoff.delay(self.failures[name])
            self.restart_at[name] = now + delay
            logger.error(
                "%s exited with code %s after %.0f s; restarting in %.0f s",
                name,
                service.process.returncode,
                ran_for,
                delay,
            )

    def run(self, stopping: Callable[[], bool], interval: float = 0.5) -> None:
        """Check every ``interval`` seconds until ``stopping()`` is true."""
        while not stopping():
            self.check()
            time.sleep(interval)


NO_ALERT_ROUTE = (
    "WARNING: no alert route is set up, so nobody is told of an urgent case unless the staff dashboard\n"
    "is open. Set SMTP_HOST and NOTIFY_EMAIL_TO, or NOTIFY_WEBHOOK_URL, or on_call in clinic.yml (README).\n"
)


def alert_route_notice(settings: Settings) -> str:
    """The start-up print's warning while no alert route is set up (bot.dashboard.web.alert_route)."""
    try:
        clinic: Optional[Clinic] = load_clinic(settings.clinic_config)
    except ClinicConfigError:
        clinic = None  # the web app refuses to start and says why
    return "" if route_configured(settings, clinic) else NO_ALERT_ROUTE


def main() -> int:
    """Run the assistant in the foreground until Ctrl-C or SIGTERM, restarting what dies."""
    process.start()
    stack = Stack()
    stopping = False
    supervising = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if not supervising:  # still starting: leave the wait at once
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    s = stack.settings
    try:
        stack.start()
        stack.wait_ready(300.0)
        api = "on (JWT in the Authorization header, see README)" if s.rasa_api else "off (RASA_API=true enables it)"
        print(
            f"\nThe assistant is running:\n"
            f"  demo page with the chat widget  {s.public_web_url}/\n"
            f"  REST webhook                    {s.public_rasa_url}/webhooks/rest/webhook\n"
            f"  Rasa HTTP API                   {api}\n"
            f"A process that stops is restarted. Press Ctrl-C to stop.\n"
            f"{alert_route_notice(s)}",
            flush=True,
        )
        supervising = True
        Supervisor(stack).run(lambda: stopping)
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        logger.error("could not start the assistant: %s", exc)
        return 1
    finally:
        logger.info("stopping all processes")
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
