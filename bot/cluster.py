"""Several Rasa replicas behind haproxy on one machine: ``python -m bot.cluster`` (``make run-cluster``).

The same processes as ``make run`` (:mod:`bot.launch`), started and restarted by the same
:class:`~bot.launch.Stack` and :class:`~bot.launch.Supervisor`, plus what several replicas
need to share a conversation:

* PostgreSQL (the escalation store and Rasa's tracker store) and Redis (Rasa's lock store,
  so one conversation's messages are handled one at a time whichever replica gets them,
  and whatever else the replicas share: ``REDIS_URL``), from the Debian packages, on
  loopback, with their data under ``VAR_DIR/cluster/`` and random passwords kept there (0600);
* ``REPLICAS`` Rasa servers (default 2) on free loopback ports, the action server and the web app;
* haproxy, written from ``deploy/haproxy/cluster.cfg.in``: the patients' frontend on
  ``BIND_HOST:RASA_PORT`` (health checks take a dead replica out, a cookie keeps a socket.io
  client on its replica), the web app's on ``BIND_HOST:WEB_PORT``, and on loopback the staff
  bridges (any live replica) and a monitor (``/up``, ``/stats``).

Only haproxy's two frontends listen on ``BIND_HOST``; every other process binds loopback.
The replicas trust one proxy (``TRUSTED_PROXY_COUNT=1``), so their rate limits see the
patient's address; the web app likewise (``WEB_PROXIES_COUNT=1``).

PostgreSQL refuses to run as root: as root it runs as the ``postgres`` system user, with the
one capability to pass through ``VAR_DIR``'s private folders (``setpriv``, util-linux).

The fault tests (``make test-cluster``, ``tests/cluster/``) start a :class:`Cluster` of their own.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import pwd
import secrets as token_source
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from bot.core import process
from bot.core.files import private_directory
from bot.core.settings import REPO_ROOT, Settings
from bot.launch import Service, Stack, Supervisor, free_port, local_address, web_python

__all__ = ["Cluster", "ClusterStack", "PostgresData", "main", "postgres_bin_dir"]

logger = logging.getLogger("bot.cluster")

HAPROXY_TEMPLATE = REPO_ROOT / "deploy" / "haproxy" / "cluster.cfg.in"
HAPROXY_ERRORS = REPO_ROOT / "deploy" / "haproxy" / "errors"
#: How long a replica that died holding a conversation's lock keeps it (Rasa's ``TICKET_LOCK_LIFETIME``,
#: default 60 s): the next message of that conversation waits this long at most. A turn takes
#: seconds (the action server's own timeout is 3 s), so 20 s leaves a wide margin.
LOCK_LIFETIME_SECONDS = 20
STORES = ("postgres", "redis")


def postgres_bin_dir() -> Optional[Path]:
    """The newest Debian PostgreSQL's binaries (``/usr/lib/postgresql/N/bin``), if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        raise RuntimeError(f"{name} not found: run `make system-deps` (scripts/system-deps.sh)")
    return path


def _secret_file(path: Path) -> str:
    """The random password kept in ``path`` (0600), made on first use."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(token_source.token_urlsafe(24), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


@dataclass
class PostgresData:
    """A PostgreSQL data folder: initialised once, started in the foreground as a :class:`Service`."""

    root: Path
    port: int
    bin: Path = field(default_factory=lambda: postgres_bin_dir() or Path("/nonexistent"))

    def __post_init__(self) -> None:
        self.user: Optional[str] = "postgres" if os.geteuid() == 0 else None
        self.data = self.root / "data"

    def _as_owner(self, *command: str) -> list[str]:
        """As root: run as ``postgres``, allowed to pass through VAR_DIR's private (0700) folders
        (``CAP_DAC_READ_SEARCH``, nothing else) rather than opening them to every user."""
        if not self.user:
            return list(command)
        return [_tool("setpriv"), f"--reuid={self.user}", f"--regid={self.user}", "--init-groups",
                "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--", *command]

    def _run(self, *command: str, stdin: bytes = b"", env: Optional[Mapping[str, str]] = None) -> None:
        done = subprocess.run(self._as_owner(*command), input=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        if done.returncode:
            message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise RuntimeError(f"{Path(command[0]).name} failed: {message[0]}")

    @property
    def superuser_password(self) -> str:
        return _secret_file(self.root.parent / "secrets" / "postgres-superuser")

    @property
    def password(self) -> str:
        return _secret_file(self.root.parent / "secrets" / "postgres-assistant")

    @property
    def url(self) -> str:
        return f"postgresql://assistant:{self.password}@127.0.0.1:{self.port}/assistant"

    def initialise(self) -> None:
        """``initdb`` with password authentication (scram), unless the folder holds a cluster already."""
        if not (self.bin / "postgres").exists():
            raise RuntimeError("PostgreSQL binaries not found: run `make system-deps`")
        if (self.data / "PG_VERSION").exists():
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        password_file = self.root / "initdb-password"
        password_file.touch(mode=0o600)
        password_file.write_text(self.superuser_password, encoding="utf-8")
        if self.user:
            record = pwd.getpwnam(self.user)
            for path in (self.root, password_file):
                os.chown(path, record.pw_uid, record.pw_gid)
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "scram-sha-256",
                      f"--pwfile={password_file}")
        finally:
            password_file.unlink()

    def service(self) -> Service:
        """The server in the foreground, on loopback only (its socket folder is the data's own)."""
        command = self._as_owner(str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
                                 "-p", str(self.port), "-k", str(self.root))
        return Service("postgres", command, f"tcp://127.0.0.1:{self.port}")

    def ensure_database(self) -> None:
        """The ``assistant`` role (its password from stdin, never an argument) and database; idempotent."""
        psql = (str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-")
        script = (
            "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'assistant') THEN "
            "CREATE ROLE assistant LOGIN; END IF; END$$;\n"
            f"\\set pw '{self.password}'\n"
            "ALTER ROLE assistant PASSWORD :'pw';\n"
            "SELECT 'CREATE DATABASE assistant OWNER assistant' "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'assistant')\\gexec\n"
        )
        self._run(*psql, stdin=script.encode(), env={"PGPASSWORD": self.superuser_password})


def redis_service(root: Path, port: int, password: str) -> Service:
    """redis-server in the foreground on loopback, its password and data folder in a 0600 config file."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = root / "redis.conf"
    config.touch(mode=0o600, exist_ok=True)
    config.chmod(0o600)
    config.write_text(
        "# Written by bot/cluster.py; edits are overwritten.\n"
        f"bind 127.0.0.1\nport {port}\nprotected-mode yes\ndaemonize no\n"
        f"dir {root}\nappendonly yes\nsave \"\"\nrequirepass {password}\n",
        encoding="utf-8",
    )
    return Service("redis", [_tool("redis-server"), str(config)], f"tcp://127.0.0.1:{port}")


@dataclass
class ClusterStack(Stack):
    """A :class:`Stack` whose services may each have their own environment, and stores checked by TCP."""

    service_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self, *names: str, env: Optional[Mapping[str, str]] = None) -> None:
        for name in names or tuple(self.services):
            super().start(name, env={**self.service_env.get(name, {}), **(env or {})})

    def wait_ready(self, timeout: float = 180.0, *names: str) -> None:
        deadline = time.monotonic() + timeout
        for name in names or tuple(self.services):
            service = self.services[name]
            if not service.health_url.startswith("tcp://"):
                super().wait_ready(max(1.0, deadline - time.monotonic()), name)
                continue
            host, port = service.health_url[len("tcp://"):].rsplit(":", 1)
            while True:
                if service.process and service.process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {service.process.returncode}")
                try:
                    with socket.create_connection((host, int(port)), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} not ready after {timeout:.0f}s")
                    time.sleep(0.2)
            logger.info("%s is ready", name)

    def stop(self, *names: str, timeout: float = 20.0) -> None:
        """The applications first, then the stores they were writing to."""
        chosen = names or tuple(self.services)
        for group in ([name for name in chosen if name not in STORES], [name for name in chosen if name in STORES]):
            if not group:  # Stack.stop() with no names stops everything
                continue
            postgres = self.services.get("postgres")
            if "postgres" in group and postgres is not None and postgres.running:
                # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
                os.killpg(postgres.process.pid, signal.SIGINT)
            super().stop(*group, timeout=timeout)


def replica_name(index: int) -> str:
    return f"rasa-{index}"


class Cluster:
    """Everything ``make run-cluster`` starts, on the ports the settings and free loopback ports give."""

    def __init__(self, replicas: int = 2, env: Optional[Mapping[str, str]] = None) -> None:
        if replicas < 1:
            raise ValueError("REPLICAS must be at least 1")
        base_env = dict(os.environ if env is None else env)
        base = Settings.from_env(base_env, read_secrets=False)
        self.replicas = replicas
        self.bind_host = base.bind_host
        self.rasa_port = base.rasa_port  # haproxy's patient frontend
        self.web_port = base.web_port  # haproxy's web frontend
        self.root = base.var_dir / "cluster"
        private_directory(base.var_dir)
        private_directory(self.root)
        private_directory(self.root / "secrets")
        self.ports = {
            "postgres": free_port(), "redis": free_port(), "actions": free_port(), "web": free_port(),
            "staff": free_port(), "monitor": free_port(),
            **{replica_name(i): free_port() for i in range(1, replicas + 1)},
            **{f"{replica_name(i)}-staff": free_port() for i in range(1, replicas + 1)},
        }
        self.postgres = PostgresData(self.root / "postgres", self.ports["postgres"])
        redis_password = _secret_file(self.root / "secrets" / "redis")
        self.redis_url = f"redis://:{redis_password}@127.0.0.1:{self.ports['redis']}/1"
        front = local_address(self.bind_host)
        self.patients_url = f"http://{front}:{self.rasa_port}"
        self.web_url = f"http://{front}:{self.web_port}"
        self.monitor_url = f"http://127.0.0.1:{self.ports['monitor']}"
        env_all = {
            **base_env,
            "BIND_HOST": "127.0.0.1",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis_url,
            "ACTION_PORT": str(self.ports["actions"]),
            "WEB_PORT": str(self.ports["web"]),
            "PUBLIC_RASA_URL": base_env.get("PUBLIC_RASA_URL") or self.patients_url,
            "PUBLIC_WEB_URL": base_env.get("PUBLIC_WEB_URL") or self.web_url,
            "RASA_INTERNAL_URL": self.patients_url,
            "STAFF_BRIDGE_URL": f"http://127.0.0.1:{self.ports['staff']}",
            "TICKET_LOCK_LIFETIME": base_env.get("TICKET_LOCK_LIFETIME") or str(LOCK_LIFETIME_SECONDS),
        }
        for name in ("TRACKER_STORE_URL", "RASA_PORT", "STAFF_BRIDGE_PORT"):
            env_all.pop(name, None)  # the tracker follows DATABASE_URL; ports are per replica below
        self.stack = ClusterStack(env=env_all, log_dir=self.root / "logs")
        rasa = self.stack.services.pop("rasa")
        web = self.stack.services.pop("web")
        actions = self.stack.services.pop("actions")
        services: dict[str, Service] = {
            "postgres": self.postgres.service(),
            "redis": redis_service(self.root / "redis", self.ports["redis"], redis_password),
            "haproxy": Service("haproxy", [_tool("haproxy"), "-W", "-db", "-f", str(self.root / "haproxy.cfg")],
                               f"{self.monitor_url}/up"),
            "actions": actions,
        }
        for index in range(1, replicas + 1):
            name = replica_name(index)
            services[name] = Service(name, list(rasa.command), f"http://127.0.0.1:{self.ports[name]}/")
            self.stack.service_env[name] = {
                "RASA_PORT": str(self.ports[name]),
                "STAFF_BRIDGE_PORT": str(self.ports[f"{name}-staff"]),
                "TRUSTED_PROXY_COUNT": "1",
            }
        services["web"] = web
        self.stack.service_env["web"] = {"WEB_PROXIES_COUNT": "1"}
        self.stack.services = services

    @property
    def replica_names(self) -> list[str]:
        return [replica_name(i) for i in range(1, self.replicas + 1)]

    def replica_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def haproxy_config(self) -> str:
        """deploy/haproxy/cluster.cfg.in with this cluster's addresses."""
        rasa_servers = "\n".join(
            f"    server {name} 127.0.0.1:{self.ports[name]} check cookie {name}" for name in self.replica_names
        )
        staff_servers = "\n".join(
            f"    server {name} 127.0.0.1:{self.ports[name + '-staff']} check port {self.ports[name]}"
            for name in self.replica_names
        )
        bind = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return string.Template(HAPROXY_TEMPLATE.read_text(encoding="utf-8")).substitute(
            bind=bind if bind not in ("", "[::]") else ("::" if bind == "[::]" else "0.0.0.0"),
            rasa_port=self.rasa_port, web_port=self.web_port, web_backend_port=self.ports["web"],
            staff_port=self.ports["staff"], monitor_port=self.ports["monitor"], errors=HAPROXY_ERRORS,
            rasa_servers=rasa_servers, staff_servers=staff_servers,
        )

    def ensure_admin(self) -> None:
        """What ``make run`` does on a fresh install: the first admin account, in the cluster's database."""
        subprocess.run([web_python(self.stack.env), "-m", "bot.dashboard.staff", "ensure-admin"], check=True,
                       cwd=REPO_ROOT, env={**self.stack.env, **self.stack.service_env["web"]})

    def start(self, timeout: float = 300.0, ensure_admin: bool = False) -> None:
        """Start everything and wait until each process answers; on failure stop what started."""
        from bot.core.store.migrate import upgrade  # Alembic: only the launcher's own process needs it

        try:
            self.postgres.initialise()
            config = self.root / "haproxy.cfg"
            config.write_text(self.haproxy_config(), encoding="utf-8")
            self.stack.start(*STORES)
            self.stack.wait_ready(60, *STORES)
            self.postgres.ensure_database()
            upgrade(self.postgres.url)
            if ensure_admin:
                self.ensure_admin()
            self.stack.start("haproxy", "actions", *self.replica_names, "web")
            self.stack.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.stack.stop()


def main(argv: Optional[list[str]] = None) -> int:
    """Run the cluster in the foreground until Ctrl-C or SIGTERM, restarting what dies."""
    parser = argparse.ArgumentParser(prog="python -m bot.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS") or 2))
    args = parser.parse_args(argv)
    cluster = Cluster(args.replicas)  # first: its Stack makes the shared secrets process.start() reads
    process.start()
    stopping = False
    supervising = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if not supervising:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        cluster.start(ensure_admin=True)
        print(
            f"\nThe assistant is running with {args.replicas} Rasa replicas behind haproxy:\n"
            f"  demo page with the chat widget  {cluster.web_url}/\n"
            f"  REST webhook                    {cluster.patients_url}/webhooks/rest/webhook\n"
            f"  haproxy's replica states        {cluster.monitor_url}/stats (loopback)\n"
            f"  data and logs                   {cluster.root}\n"
            f"A process that stops is restarted. Press Ctrl-C to stop.\n",
            flush=True,
        )
        supervising = True
        Supervisor(cluster.stack).run(lambda: stopping)
        return 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        logger.error("could not start the cluster: %s", exc)
        return 1
    finally:
        logger.info("stopping all processes")
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
