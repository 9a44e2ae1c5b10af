"""scripts/cached.py: a build step runs once per set of inputs; a change to any input runs it again."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bot.core.settings import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "cached.py"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An input file and an output folder inside the repository (the script works from its root),
    a cache in the test's folder, and a build command that counts its runs."""
    scratch = Path(tempfile.mkdtemp(prefix=".cache-test-", dir=REPO_ROOT / "scripts"))
    monkeypatch.setenv("DRY_NEEDLING_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    (scratch / "input.txt").write_text("first")
    build = (
        "import pathlib, sys; root = pathlib.Path(sys.argv[1]);"
        "(root / 'out').mkdir(exist_ok=True);"
        "(root / 'out' / 'result.txt').write_text((root / 'input.txt').read_text().upper());"
        f"open({str(runs)!r}, 'a').write('run\\n')"
    )
    rel = scratch.relative_to(REPO_ROOT)

    def cached(*extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(SCRIPT), "demo", "--input", f"{rel}/input.txt", *extra,
                   "--output", f"{rel}/out", "--", sys.executable, "-c", build, str(scratch)]
        return subprocess.run(command, capture_output=True, text=True, check=True)

    def run_count() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    yield scratch, cached, run_count
    shutil.rmtree(scratch)


def test_the_same_inputs_restore_the_stored_output_without_running_the_command(workspace):
    scratch, cached, run_count = workspace

    cached()
    (scratch / "out").rename(scratch / "gone")
    second = cached()

    assert run_count() == 1
    assert "restored" in second.stdout
    assert (scratch / "out" / "result.txt").read_text() == "FIRST"


def test_a_changed_input_runs_the_command_again(workspace):
    scratch, cached, run_count = workspace

    cached()
    (scratch / "input.txt").write_text("second")
    cached()

    assert run_count() == 2
    assert (scratch / "out" / "result.txt").read_text() == "SECOND"


def test_the_inputs_of_a_python_build_step_include_the_modules_it_imports():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import cached
    finally:
        sys.path.remove(str(SCRIPT.parent))

    closure = cached.import_closure([REPO_ROOT / "bot" / "assistant" / "nlp" / "pipeline.py"])

    assert REPO_ROOT / "bot" / "core" / "safety" / "catalogue.py" in closure  # imported by the pipeline
    assert REPO_ROOT / "bot" / "dashboard" / "web" / "app.py" not in closure


def test_the_cache_can_be_turned_off(workspace, monkeypatch):
    scratch, cached, run_count = workspace
    monkeypatch.setenv("DRY_NEEDLING_CACHE", "off")

    cached()
    cached()

    assert run_count() == 2
