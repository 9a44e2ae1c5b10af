"""Import rules for the project's own code: no import cycles, and no arrow pointing the wrong way.

Every module under ``bot/`` and ``actions/`` is parsed with :mod:`ast` (nothing is imported).
An edge A -> B is any ``import B`` or ``from B import x`` in A that names one of these modules
(``from pkg import mod`` is an edge to ``pkg.mod`` when that is a module), written anywhere in
A: at module level *and* inside functions and methods, since a deferred import closes a
circle just the same (``bot.web.auth`` once imported ``bot.web.login`` inside ``setup``), and
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

#: (importer, imported, why): no module in (or equal to) ``importer`` may import one in ``imported``.
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("bot.safety", "bot.nlp",
     "the safety screen sits below the NLU pipeline, which uses it; shared paths live in bot.paths"),
)

#: Import cycles known and being removed elsewhere (issue 23, item 4): each exact set of modules
#: is let through, nothing else. Delete an entry when its circle is gone.
TOLERATED_CYCLES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"bot.channels.sms_staff", "bot.channels.twilio_sms"}),
     "sms_staff <-> twilio_sms: removed in the SMS channel's own change"),
)


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
    assert project_graph.has_edge("bot.web.login", "bot.web.auth")
    assert project_graph.has_edge("bot.channels.guard", "bot.channels.text_input")


def test_no_import_cycles(project_graph):
    tolerated = {members for members, _ in TOLERATED_CYCLES}
    found = [_path(project_graph, component) for component in cycles(project_graph) if component not in tolerated]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_forbidden_imports(project_graph):
    found = forbidden_edges(project_graph)
    assert not found, "imports against the layer rules:\n" + "\n".join(found)


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


def test_an_arrow_from_safety_up_to_nlp_is_refused():
    graph = _graph(
        bot__safety__screen="def pipeline():\n    from bot.nlp.pipeline import DEFAULT_OUTPUT\n",
        bot__nlp__pipeline="from bot.safety.catalogue import catalogue_in\n",
        bot__safety__catalogue="",
    )
    assert [line.split(" (")[0] for line in forbidden_edges(graph)] == ["bot.safety.screen imports bot.nlp.pipeline"]
    assert forbidden_edges(_graph(bot__nlp__pipeline="from bot.safety.catalogue import x\n",
                                  bot__safety__catalogue="")) == []
