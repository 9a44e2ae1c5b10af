"""The web app runs on its own environment, .venv-web: a current aiohttp, and no Rasa in it.

Rasa 3.6 pins aiohttp < 3.10 in .venv. The web app (``python -m bot.dashboard.web``) is served by
aiohttp, so it gets its own environment whose aiohttp has no published advisory, and its
code must never need Rasa, rasa_sdk, Sanic, socket.io or TensorFlow. These tests run under
.venv (with the rest of tests/unit) and ask .venv-web's interpreter in a subprocess.

Advisories checked (aio-libs/aiohttp GitHub security advisories, newest first):
- fixed in 3.14.3: CVE-2026-69244; in 3.14.2: CVE-2026-59881, CVE-2026-69243;
- fixed in 3.14.1: CVE-2026-54273 (GHSA-4fvr-rgm6-gqmc, unbounded queue of pipelined requests),
  CVE-2026-54274, CVE-2026-54275 (GHSA-4m7w-qmgq-4wj5), CVE-2026-54276, CVE-2026-54277
  (GHSA-63hw-fmq6-xxg2), CVE-2026-54278 (GHSA-g3cq-j2xw-wf74, compressed body decompressed in one
  chunk), CVE-2026-54279 (GHSA-2fqr-mr3j-6wp8), CVE-2026-54280;
- fixed in 3.14.0: CVE-2026-34993, CVE-2026-47265;
- fixed in 3.13.4: CVE-2026-22815 (GHSA-w2fm-2cpv-w7v5), CVE-2026-34513 to CVE-2026-34520
  (among them GHSA-2vrm-gr82-f7m5, GHSA-3wq7-rqq7-wx6j, GHSA-966j-vmvw-g2g9, GHSA-63hf-3vf5-4wqf),
  CVE-2026-34525;
- fixed in 3.13.3: CVE-2025-69223 to CVE-2025-69230 (GHSA-6mq8-rvhq-8wgg zip bomb,
  GHSA-54jq-c3m8-4m76, GHSA-6jhg-hg63-jvvf, GHSA-69f9-5gxw-wvc2, GHSA-fh55-r93g-j68g,
  GHSA-g84x-mcqj-x9qq, GHSA-jj3x-wxrx-4x23, GHSA-mqqc-3gqh-h2x8);
- older ones (e.g. GHSA-9548-qrrj-x5pj request smuggling, 3.12.14; CVE-2024-52304, 3.10.11),
  which is why .venv's aiohttp 3.9.5 (Rasa's pin) must not serve the web app.
So 3.14.3 is the first release with none of them; requirements-web.in sets the same floor.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.settings import REPO_ROOT
import networkx as nx

from bot.launch import Stack, web_python

from tests.unit.test_import_rules import import_graph, library_users, sources_under

WEB_PYTHON = REPO_ROOT / ".venv-web" / "bin" / "python"
LOCK = REPO_ROOT / "requirements-web.lock"
MINIMUM_AIOHTTP = (3, 14, 3)
# The web app's packages (and the shared modules the contract lists) that must run without Rasa.
# The web app is the dashboard layer; the core is shared with it, except the modules that need
# spaCy (the safety screen's NLP, which runs in the Rasa server and the action server only).
WEB_PACKAGES = ("bot/dashboard", "bot/core")
RASA_ONLY_LIBRARIES = ("spacy",)
FORBIDDEN = ("rasa", "rasa_sdk", "sanic", "socketio", "tensorflow")

PROBE = """
import importlib, importlib.util, json, sys
modules = json.loads(sys.argv[1])
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
forbidden = json.loads(sys.argv[2])
import aiohttp
print(json.dumps({
    "failed": failed,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in forbidden),
    "installed": sorted(m for m in forbidden if importlib.util.find_spec(m) is not None),
    "aiohttp": aiohttp.__version__,
    "prefix": sys.prefix,
}))
"""


def web_modules() -> list[str]:
    """Every module of the web app's packages (migration scripts excepted: alembic loads those)."""
    names = []
    for package in WEB_PACKAGES:
        root = REPO_ROOT / package
        for path in sorted(root.rglob("*.py")) if root.is_dir() else ():
            relative = path.relative_to(REPO_ROOT).with_suffix("")
            if "migrations" in relative.parts or relative.name == "__main__":
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            names.append(".".join(parts))
    needs_rasa_env = _needing(RASA_ONLY_LIBRARIES)
    return [name for name in names if name not in needs_rasa_env]


def _needing(libraries: tuple[str, ...]) -> set[str]:
    """Modules of bot/ that import one of ``libraries``, directly or through other modules of bot/."""
    sources = sources_under(REPO_ROOT, ("bot",))
    graph = import_graph(sources)
    direct = {name for name, text in library_users(sources, libraries)}
    return direct | {name for name in graph.nodes if any(nx.has_path(graph, name, user) for user in direct)}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


@pytest.fixture(scope="module")
def probe() -> dict:
    """What .venv-web's interpreter sees after importing every web module."""
    if not WEB_PYTHON.exists():
        pytest.fail(".venv-web is missing: `make setup` (or `make .venv-web/.installed`) installs it")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    result = subprocess.run(
        [str(WEB_PYTHON), "-c", PROBE, json.dumps(web_modules()), json.dumps(FORBIDDEN)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_probe_covers_the_web_app_and_the_core_it_shares():
    modules = set(web_modules())
    assert {"bot.dashboard.web", "bot.dashboard.web.app", "bot.core.store.db", "bot.core.escalation.service",
            "bot.dashboard.notify.worker", "bot.core.settings", "bot.core.vocabulary"} <= modules
    # The spaCy screen is the core's only part the web app does not load.
    assert "bot.core.safety.screen" not in modules and "bot.core.safety.verdict" in modules


def test_every_web_module_imports_in_the_web_environment(probe):
    assert probe["failed"] == {}
    assert Path(probe["prefix"]).resolve() == (REPO_ROOT / ".venv-web").resolve()


def test_the_web_environment_has_no_rasa_sanic_socketio_or_tensorflow(probe):
    assert probe["loaded"] == [], "a web module imported these"
    assert probe["installed"] == [], "these are installed in .venv-web"


def test_aiohttp_in_the_web_environment_is_the_locked_release_free_of_known_advisories(probe):
    pinned = re.search(r"^aiohttp==(\S+)$", LOCK.read_text(), re.MULTILINE)
    assert pinned, "requirements-web.lock pins no aiohttp"
    assert probe["aiohttp"] == pinned.group(1)
    assert version(probe["aiohttp"]) >= MINIMUM_AIOHTTP


def test_the_floor_in_requirements_web_in_matches_this_test():
    floor = re.search(r"^aiohttp>=(\S+)$", (REPO_ROOT / "requirements-web.in").read_text(), re.MULTILINE)
    assert floor and version(floor.group(1)) == MINIMUM_AIOHTTP


def test_the_launcher_starts_the_web_app_on_the_web_environment(tmp_path):
    stack = Stack(env={"VAR_DIR": str(tmp_path)})

    assert stack.services["web"].command == [str(WEB_PYTHON), "-m", "bot.dashboard.web"]
    assert stack.services["rasa"].command[0] == sys.executable
    assert stack.services["actions"].command[0] == sys.executable


def test_web_python_overrides_the_interpreter(tmp_path):
    assert web_python({"WEB_PYTHON": "/opt/web/bin/python"}) == "/opt/web/bin/python"
    stack = Stack(env={"VAR_DIR": str(tmp_path), "WEB_PYTHON": "/opt/web/bin/python"})
    assert stack.services["web"].command[0] == "/opt/web/bin/python"


def test_a_missing_web_environment_is_a_clear_error_not_a_fallback(tmp_path):
    missing = tmp_path / "no-venv" / "bin" / "python"
    stack = Stack(env={"VAR_DIR": str(tmp_path), "WEB_PYTHON": str(missing)})

    with pytest.raises(RuntimeError, match=r"cannot start web: no interpreter at .*no-venv.*make setup"):
        stack.start("web")
    assert stack.services["web"].process is None


def test_the_systemd_unit_runs_the_web_app_on_the_web_environment():
    unit = (REPO_ROOT / "deploy" / "systemd" / "dry-needling-web.service").read_text()
    assert re.search(r"^ExecStart=\S*/\.venv-web/bin/python -m bot\.dashboard\.web$", unit, re.MULTILINE)


def recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    lines = (REPO_ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        body.append(line.strip())
    return body


def test_make_installs_the_web_environment_and_runs_the_web_tests_in_it():
    setup = next(line for line in (REPO_ROOT / "Makefile").read_text().splitlines() if line.startswith("setup:"))
    assert "$(VENV_WEB)/.installed" in setup
    install = recipe("$(VENV_WEB)/.installed")
    assert any(line.startswith("$(UV) pip install") and f"--python $(PY_WEB)" in line
               and "--no-deps" in line and line.endswith("-r requirements-web.lock") for line in install)
    assert "$(PY_WEB) -m pip check" in install

    pytest_runs = [line for part in ("pytest-assistant", "pytest-web", "pytest-browser", "pytest-serial")
                   for line in recipe(part)]
    assert all(f"pytest-{part}" in next(line for line in (REPO_ROOT / "Makefile").read_text().splitlines()
                                          if line.startswith("pytest:"))
               for part in ("assistant", "web", "browser", "serial"))
    main_run = next(line for line in pytest_runs if line.startswith("$(PY) -m pytest --ignore=tests/browser"))
    assert "--ignore=tests/web" in main_run and "--ignore=tests/staff" in main_run
    assert any(line.startswith("$(PY_WEB) -m pytest tests/web") for line in pytest_runs)
    assert recipe("run")[-1] == "$(PY) -m bot.launch"
