"""Start the whole assistant: Rasa server, action server and web app.

``python -m bot.launch`` (what ``make run`` does) runs all three in the
foreground and stops all of them cleanly on Ctrl-C; if one of them dies, the
others are stopped too so that nothing half-works unnoticed. The end-to-end
tests use :class:`Stack` to start the same processes on free ports.
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
from typing import Mapping, Optional

from bot.runtime import write_endpoints
from bot.settings import REPO_ROOT, Settings

logger = logging.getLogger(__name__)

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def newest_model(models_dir: Path = REPO_ROOT / "models") -> Path:
    """The newest trained model archive."""
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    if not models:
        raise FileNotFoundError(f"no trained model in {models_dir}: run `make train`")
    return models[-1]


@dataclass
class Service:
    """One child process and how to tell it is ready."""

    name: str
    command: list[str]
    health_url: str
    process: Optional[subprocess.Popen] = None
    log_path: Optional[Path] = None


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
        self.settings = Settings.from_env(self.env)
        endpoints = write_endpoints(self.settings)
        s = self.settings
        self.services = {
            "rasa": Service(
                "rasa",
                [
                    str(VENV_BIN / "rasa"), "run",
                    "--model", str(newest_model()),
                    "--enable-api", "--auth-token", s.rasa_token,
                    "--cors", "*",
                    "--interface", s.bind_host, "--port", str(s.rasa_port),
                    "--credentials", str(REPO_ROOT / "credentials.yml"),
                    "--endpoints", str(endpoints),
                ],
                f"http://127.0.0.1:{s.rasa_port}/status?token={s.rasa_token}",
            ),
            "actions": Service(
                "actions",
                [str(VENV_BIN / "python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(s.action_port)],
                f"http://127.0.0.1:{s.action_port}/health",
            ),
            "web": Service("web", [str(VENV_BIN / "python"), "-m", "bot.web"], f"http://127.0.0.1:{s.web_port}/healthz"),
        }

    def start(self, *names: str) -> None:
        """Start the named services (default: all)."""
        for name in names or tuple(self.services):
            service = self.services[name]
            stdout = None
            if self.log_dir:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                service.log_path = self.log_dir / f"{name}.log"
                stdout = service.log_path.open("ab")
            service.process = subprocess.Popen(
                service.command,
                cwd=REPO_ROOT,
                env=dict(self.env),
                stdout=stdout,
                stderr=subprocess.STDOUT if stdout else None,
                start_new_session=True,
            )
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

    def restart(self, name: str, timeout: float = 180.0) -> None:
        """Stop and start one service on the same port."""
        self.stop(name)
        self.start(name)
        self.wait_ready(timeout, name)

    def first_exited(self) -> Optional[str]:
        """The name of a service that has exited, if any."""
        for name, service in self.services.items():
            if service.process and service.process.poll() is not None:
                return name
        return None


def main() -> int:
    """Run the assistant in the foreground until Ctrl-C or a process dies."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stack = Stack()
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    s = stack.settings
    stack.start()
    try:
        stack.wait_ready(300.0)
        print(
            f"\nThe assistant is running:\n"
            f"  demo page with the chat widget  http://127.0.0.1:{s.web_port}/\n"
            f"  REST webhook                    http://127.0.0.1:{s.rasa_port}/webhooks/rest/webhook\n"
            f"  Rasa HTTP API token             in RASA_TOKEN or {s.var_dir / 'secrets' / 'rasa_token'}\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            exited = stack.first_exited()
            if exited:
                logger.error("%s stopped unexpectedly; stopping the others", exited)
                return 1
            time.sleep(0.5)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        logger.info("stopping all processes")
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
