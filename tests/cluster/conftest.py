"""One cluster (bot/cluster.py) for the fault tests: PostgreSQL, Redis, haproxy, Rasa replicas,
the action server and the web app, on loopback, in a temporary VAR_DIR; stopped whatever happens.

``make test-cluster`` runs these tests on their own (``make test`` leaves tests/cluster out): each
test kills, stops or pauses processes of the cluster, so they run in order, in one process.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests
from sqlalchemy import create_engine, text

from bot.cluster import Cluster
from bot.core.settings import Settings, sync_db_url
from bot.launch import free_port
from tests.conftest import require_model

#: Three replicas: two tests each kill one, and the last still needs two (one to kill, one to answer).
REPLICAS = int(os.environ.get("CLUSTER_TEST_REPLICAS") or 3)


@dataclass
class Turn:
    """One REST turn through haproxy (or straight to a replica)."""

    status: int
    body: object
    replica: Optional[str]  # haproxy's SERVERID cookie: which replica answered

    @property
    def texts(self) -> str:
        if not isinstance(self.body, list):
            return ""
        return "\n".join(part.get("text", "") for part in self.body if isinstance(part, dict))


class ClusterHandle:
    """The running cluster and what the tests do to it."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.stack = cluster.stack
        self.settings = Settings.from_env(self.stack.env)
        self.database_url = cluster.postgres.url  # tests.e2e helpers read escalations from here

    @property
    def patients_url(self) -> str:
        return self.cluster.patients_url

    def say(self, sender: str, message: str, replica: Optional[str] = None, direct: bool = False,
            timeout: float = 60) -> Turn:
        """POST the REST webhook through haproxy (``replica``: the SERVERID cookie to send), or
        straight to ``replica``'s own port with ``direct``."""
        if direct:
            url, cookies = self.cluster.replica_url(replica), None
        else:
            url, cookies = self.patients_url, ({"SERVERID": replica} if replica else None)
        reply = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                              cookies=cookies, timeout=timeout)
        try:
            body = reply.json()
        except ValueError:
            body = reply.text
        served = reply.cookies.get("SERVERID") or (replica if direct else None)
        return Turn(reply.status_code, body, served)

    def events(self, sender: str) -> list[dict]:
        """The conversation's events as Rasa's PostgreSQL tracker store holds them, in order."""
        engine = create_engine(sync_db_url(self.database_url), future=True)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT id, type_name, intent_name, action_name, data FROM events "
                         "WHERE sender_id = :sender ORDER BY id"), {"sender": sender},
                ).mappings().all()
        finally:
            engine.dispose()
        return [dict(row) for row in rows]

    def live_replicas(self) -> list[str]:
        return [name for name in self.cluster.replica_names if self.stack.services[name].running]

    def kill(self, name: str) -> None:
        """``kill -9`` the process (its whole process group, as a crash would leave it: nothing cleaned up)."""
        process = self.stack.services[name].process
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def pause(self, name: str) -> None:
        os.killpg(self.stack.services[name].process.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.stack.services[name].process.pid, signal.SIGCONT)

    def haproxy_states(self) -> dict[str, str]:
        """Each replica's state in haproxy's patient backend (UP, DOWN, ...)."""
        csv = requests.get(f"{self.cluster.monitor_url}/stats;csv", timeout=5).text.splitlines()
        header = csv[0].lstrip("# ").split(",")
        states = {}
        for line in csv[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "rasa" and row.get("svname", "").startswith("rasa-"):
                states[row["svname"]] = row["status"]
        return states

    def wait_haproxy(self, name: str, state: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.haproxy_states().get(name, "").split(" ")[0] != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy never saw {name} {state}: {self.haproxy_states()}")
            time.sleep(0.25)


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterHandle]:
    require_model()
    var_dir = Path(tempfile.mkdtemp(prefix="cluster-test-"))
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "RASA_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        # Every test talks from 127.0.0.1: the per-address limits are for the internet, not this suite.
        "RATE_ADDRESS_PER_MINUTE": "100000",
        "URGENT_PER_ADDRESS_PER_HOUR": "100000",
        "NOTIFY_INTERVAL_SECONDS": "0.5",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "SMTP_HOST", "NOTIFY_WEBHOOK_URL", "PUBLIC_RASA_URL", "PUBLIC_WEB_URL"):
        env.pop(name, None)
    running = Cluster(REPLICAS, env=env)
    started = time.monotonic()
    try:
        running.start(timeout=420)  # stops what it started if anything fails
        print(f"\ncluster of {REPLICAS} replicas started in {time.monotonic() - started:.0f} s ({var_dir})")
        yield ClusterHandle(running)
    finally:
        running.stop()
        if os.environ.get("KEEP_CLUSTER_VAR"):
            print(f"cluster's data and logs kept in {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
