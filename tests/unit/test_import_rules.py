"""Import rules for the project's own code: no import cycles, and no arrow pointing the wrong way.

Every module under ``bot/`` and ``actions/`` is parsed with :mod:`ast` (nothing is imported).
An edge A -> B is any ``import B`` or ``from B import x`` in A that names one of these modules
(``from pkg import mod`` is an edge to ``pkg.mod`` when that is a module), written anywhere in
A: at module level *and* inside functions and methods, since a deferred import closes a
circle just the same (``bot.dashboard.web.auth`` once imported ``bot.dashboard.web.login`` inside ``setup``), and
under ``if TYPE_CHECKING:``: a circle of type hints is still two modules that each need the
other (``sms_staff`` <-> ``twilio_sms``). Importing a submodule does not add an edge to its
package's ``__init__`` (they hold docstrings only).

The rules are data: :data:`FORBIDDEN` (a layer may not import another) and
:data:`TOLERATED_CYCLES` (a circle known and being removed, named with who removes it).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Mapping

import networkx as nx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Top-level packages whose modules are checked.
PACKAGES = ("bot", "actions")

#: The layers of ``bot/`` (top-level folders), lowest first: the process split made visible.
#: ``bot.core`` is shared by all three processes; ``bot.assistant`` runs in the Rasa server and
#: the action server (.venv); ``bot.dashboard`` runs in the web app (.venv-web, no Rasa);
#: ``bot.launch`` starts all three (``bot.cluster``: several Rasa replicas behind haproxy, with
#: launch's Stack and Supervisor) and ``actions`` is the action server's package Rasa loads.
LAYERS = ("bot.core", "bot.assistant", "bot.dashboard", "bot.launch", "bot.cluster", "actions")

#: (importer, imported, why): no module in (or equal to) ``importer`` may import one in ``imported``.
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("bot.core", "bot.assistant", "the shared core sits below the assistant, which uses it"),
    ("bot.core", "bot.dashboard", "the shared core sits below the dashboard, which uses it"),
    ("bot.core", "bot.launch", "the launcher starts the processes; nothing runs it"),
    ("bot.core", "actions", "actions/ is loaded by the action server, never imported by the core"),
    ("bot.assistant", "bot.dashboard", "the Rasa processes never load the web app (.venv has its own aiohttp)"),
    ("bot.assistant", "bot.launch", "the launcher starts the processes; nothing runs it"),
    ("bot.dashboard", "bot.assistant", "the web app runs in .venv-web, where Rasa and Sanic are not installed"),
    ("bot.dashboard", "bot.launch", "the launcher starts the processes; nothing runs it"),
    ("bot.core", "bot.cluster", "the cluster launcher starts the processes; nothing runs it"),
    ("bot.assistant", "bot.cluster", "the cluster launcher starts the processes; nothing runs it"),
    ("bot.dashboard", "bot.cluster", "the cluster launcher starts the processes; nothing runs it"),
    ("bot.launch", "bot.cluster", "the cluster launcher builds on the launcher, not the other way round"),
    ("bot.dashboard", "actions", "the web app runs in .venv-web; actions need rasa_sdk"),
    ("actions", "bot.dashboard", "the action server never loads the web app"),
)

#: Third-party packages a layer may not import (each layer's environment, see tests/unit/test_web_environment.py).
FORBIDDEN_LIBRARIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("bot.dashboard", ("rasa", "rasa_sdk", "sanic", "socketio", "tensorflow", "spacy"),
     "the web app's environment (.venv-web) has none of them"),
    ("bot.core", ("rasa", "rasa_sdk", "sanic", "socketio", "tensorflow"),
     "the core is shared with the web app, whose environment has none of them"),
)

#: Import cycles known and being removed elsewhere (issue 23, item 4): each exact set of modules
#: is let through, nothing else. Delete an entry when its circle is gone.
TOLERATED_CYCLES: tuple[tuple[frozenset[str], str], ...] = ()


# --- the graph ------------------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources_under(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, tuple[str, bool]]:
    """Module name -> (source, is a package) for every ``.py`` file of ``packages``."""
    found: dict[str, tuple[str, bool]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return found


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (functions, methods, ``if TYPE_CHECKING:`` blocks)."""
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def _deepest_module(name: str, modules: Mapping[str, object]) -> str | None:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> nx.DiGraph:
    """Module -> module edges among ``sources`` (see the module docstring for what counts)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sources)
    for module, (source, is_package) in sources.items():
        tree = ast.parse(source, filename=module)
        package = module if is_package else module.rpartition(".")[0]
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in sources else base
                           for alias in node.names]
            for target in targets:
                resolved = _deepest_module(target, sources)
                if resolved is not None and resolved != module:
                    graph.add_edge(module, resolved)
    return graph


def cycles(graph: nx.DiGraph) -> list[frozenset[str]]:
    """Each set of modules that import one another, directly or round a circle."""
    return [frozenset(component) for component in nx.strongly_connected_components(graph) if len(component) > 1]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_edges(graph: nx.DiGraph, rules=FORBIDDEN) -> list[str]:
    return [f"{importer} imports {imported} ({why})"
            for importer, imported in graph.edges
            for low, high, why in rules
            if _within(importer, low) and _within(imported, high)]


def library_users(sources: Mapping[str, tuple[str, bool]], libraries: Iterable[str]) -> list[tuple[str, str]]:
    """(module, library) for each module of ``sources`` that imports one of ``libraries`` itself."""
    wanted = set(libraries)
    found = []
    for module, (source, _) in sources.items():
        for node in _imports(ast.parse(source, filename=module)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if not node.level else [])
            found.extend((module, name) for name in names if name.split(".")[0] in wanted)
    return found


def library_imports(sources: Mapping[str, tuple[str, bool]], rules=FORBIDDEN_LIBRARIES) -> list[str]:
    """Imports of third-party packages a module's layer may not use."""
    return [f"{module} imports {name} ({why})"
            for layer, libraries, why in rules
            for module, name in library_users({m: s for m, s in sources.items() if _within(m, layer)}, libraries)]


def _path(graph: nx.DiGraph, component: frozenset[str]) -> str:
    """One circle through ``component``, written out, for the failure message."""
    cycle = nx.find_cycle(graph.subgraph(component))
    return " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])


# --- the rules on the project ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_graph() -> nx.DiGraph:
    return import_graph(sources_under(REPO_ROOT))


def test_the_graph_sees_the_project(project_graph):
    assert project_graph.number_of_nodes() > 100
    assert project_graph.has_edge("bot.dashboard.web.login", "bot.dashboard.web.auth")
    assert project_graph.has_edge("bot.assistant.channels.guard", "bot.assistant.channels.text_input")


def test_no_import_cycles(project_graph):
    tolerated = {members for members, _ in TOLERATED_CYCLES}
    found = [_path(project_graph, component) for component in cycles(project_graph) if component not in tolerated]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_forbidden_imports(project_graph):
    found = forbidden_edges(project_graph)
    assert not found, "imports against the layer rules:\n" + "\n".join(found)


def test_every_module_of_bot_belongs_to_a_layer(project_graph):
    outside = [m for m in project_graph.nodes if m != "bot" and not any(_within(m, layer) for layer in LAYERS)]
    assert not outside, f"modules outside the layers {LAYERS}: {outside}"


def test_no_layer_imports_a_library_its_environment_lacks():
    found = library_imports(sources_under(REPO_ROOT))
    assert not found, "\n".join(found)


# --- the checker itself, on small made-up packages ----------------------------------------------------


def _graph(**modules: str) -> nx.DiGraph:
    return import_graph({name.replace("__", "."): (source, False) for name, source in modules.items()})


def test_a_circle_closed_by_an_import_inside_a_function_is_a_cycle():
    graph = _graph(
        pkg__auth="def setup(app):\n    from pkg import login\n    login.setup(app)\n",
        pkg__login="from pkg import auth\n",
    )
    assert cycles(graph) == [frozenset({"pkg.auth", "pkg.login"})]


def test_a_longer_circle_and_relative_imports_are_seen():
    graph = _graph(
        pkg__a="from .b import thing\n",
        pkg__b="import pkg.c\n",
        pkg__c="from pkg.a import other\n",
        pkg__d="import pkg.a\n",
    )
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]


def test_a_circle_of_type_hints_is_a_cycle_and_a_one_way_arrow_is_not():
    graph = _graph(
        pkg__a="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n",
        pkg__b="from pkg import a\nimport json\n",
        pkg__c="from pkg.a import thing\n",
    )
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.b"})]
    assert sorted(graph.edges) == [("pkg.a", "pkg.b"), ("pkg.b", "pkg.a"), ("pkg.c", "pkg.a")]


def test_an_arrow_from_the_core_up_to_the_assistant_is_refused():
    graph = _graph(
        bot__core__safety__screen="def pipeline():\n    from bot.assistant.nlp.pipeline import DEFAULT_OUTPUT\n",
        bot__assistant__nlp__pipeline="from bot.core.safety.catalogue import catalogue_in\n",
        bot__core__safety__catalogue="",
    )
    assert [line.split(" (")[0] for line in forbidden_edges(graph)] == ["bot.core.safety.screen imports bot.assistant.nlp.pipeline"]
    assert forbidden_edges(_graph(bot__assistant__nlp__pipeline="from bot.core.safety.catalogue import x\n",
                                  bot__core__safety__catalogue="")) == []


def test_the_dashboard_and_the_assistant_may_not_import_each_other():
    graph = _graph(
        bot__dashboard__web__pages="from bot.assistant.channels.rest import thing\n",
        bot__assistant__channels__rest="from bot.dashboard.web import pages\n",
    )
    assert sorted(line.split(" (")[0] for line in forbidden_edges(graph)) == [
        "bot.assistant.channels.rest imports bot.dashboard.web.pages",
        "bot.dashboard.web.pages imports bot.assistant.channels.rest",
    ]


def test_a_dashboard_module_importing_rasa_is_refused_and_the_assistant_may():
    sources = {
        "bot.dashboard.web.pages": ("import rasa.core\nfrom sanic import Blueprint\nimport aiohttp\n", False),
        "bot.assistant.channels.rest": ("from rasa.core.channels import InputChannel\n", False),
        "bot.core.store.db": ("from rasa_sdk import Tracker\n", False),
    }
    assert [line.split(" (")[0] for line in library_imports(sources)] == [
        "bot.dashboard.web.pages imports rasa.core",
        "bot.dashboard.web.pages imports sanic",
        "bot.core.store.db imports rasa_sdk",
    ]
