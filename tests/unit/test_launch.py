"""The launcher restarts a process that dies, with a pause that grows and resets."""

from __future__ import annotations

import logging
import sys

import pytest

from bot.launch import Backoff, Service, Stack, Supervisor, local_address


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stack(tmp_path) -> Stack:
    """A stack whose only service is a process that exits at once with code 3."""
    stack = Stack(env={"VAR_DIR": str(tmp_path)}, log_dir=tmp_path / "logs")
    stack.services = {"flaky": Service("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"], "")}
    return stack


def died(stack: Stack) -> int:
    """Wait for the flaky process to exit; its pid."""
    process = stack.services["flaky"].process
    process.wait(timeout=30)
    return process.pid


def test_backoff_doubles_up_to_its_maximum():
    backoff = Backoff(initial=1, maximum=60)

    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_dead_process_is_restarted_after_a_growing_pause_and_each_restart_is_logged(stack, caplog):
    clock = Clock()
    supervisor = Supervisor(stack, Backoff(initial=1, maximum=4, healthy_after=100), clock=clock)
    caplog.set_level(logging.INFO, logger="bot.launch")
    stack.start("flaky")
    pids = [died(stack)]
    pauses = []

    for _ in range(4):
        supervisor.check()
        pause = supervisor.restart_at["flaky"] - clock.now
        pauses.append(pause)
        clock.now += pause - 0.01
        supervisor.check()
        assert stack.services["flaky"].process.pid == pids[-1], "restarted before the pause was over"
        clock.now += 0.01
        supervisor.check()
        pids.append(died(stack))

    assert pauses == [1, 2, 4, 4]
    assert len(set(pids)) == 5
    assert caplog.text.count("flaky exited with code 3") == 4
    assert caplog.text.count("restarting flaky") == 4


def test_the_pause_resets_after_a_healthy_run(stack):
    clock = Clock()
    supervisor = Supervisor(stack, Backoff(initial=1, maximum=60, healthy_after=100), clock=clock)
    supervisor.failures["flaky"] = 5
    stack.start("flaky")
    stack.services["flaky"].started_at = clock.now - 150
    died(stack)

    supervisor.check()

    assert supervisor.restart_at["flaky"] - clock.now == 1


def test_a_running_process_is_left_alone(tmp_path):
    stack = Stack(env={"VAR_DIR": str(tmp_path)})
    stack.services = {"steady": Service("steady", [sys.executable, "-c", "import time; time.sleep(60)"], "")}
    supervisor = Supervisor(stack, Backoff(), clock=Clock())
    stack.start("steady")
    try:
        supervisor.check()

        assert supervisor.restart_at == {}
        assert stack.services["steady"].running
    finally:
        stack.stop()

    assert not stack.services["steady"].running


def test_start_overrides_the_environment_for_that_start_only(tmp_path):
    stack = Stack(env={"VAR_DIR": str(tmp_path), "MARK": "base"}, log_dir=tmp_path / "logs")
    stack.services = {"echo": Service("echo", [sys.executable, "-c", "import os; print(os.environ['MARK'])"], "")}

    stack.start("echo", env={"MARK": "override"})
    stack.services["echo"].process.wait(timeout=30)
    stack.start("echo")
    stack.services["echo"].process.wait(timeout=30)

    assert (tmp_path / "logs" / "echo.log").read_text().split() == ["override", "base"]
    assert (tmp_path / "logs" / "echo.log").stat().st_mode & 0o777 == 0o600


def test_the_stack_runs_the_entry_points_with_no_secret_in_their_arguments(tmp_path):
    stack = Stack(env={"VAR_DIR": str(tmp_path), "ACTION_SERVER_SECRET": "hush", "RASA_JWT_SECRET": "quiet"})

    commands = {name: service.command[1:] for name, service in stack.services.items()}

    assert commands == {
        "rasa": ["-m", "bot.assistant.servers.rasa"],
        "actions": ["-m", "bot.assistant.servers.actions"],
        "web": ["-m", "bot.dashboard.web"],
    }


@pytest.mark.parametrize(
    ("bind_host", "address"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("10.0.0.5", "10.0.0.5"), ("::1", "[::1]")],
)
def test_health_checks_go_where_the_server_listens(bind_host, address):
    assert local_address(bind_host) == address
