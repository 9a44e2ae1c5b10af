"""Walk the web app's route table: every route with a concrete path to request it by."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from aiohttp import web

DUMMY_VALUES = ("6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f", "1", "x", "x.js")
PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the path as registered, e.g. /staff/escalations/{id}
    path: str  # a concrete path that the route matches, parameters filled with dummies
    handler: Any

    @property
    def required_role(self) -> Optional[str]:
        return getattr(self.handler, "required_role", None)


def concrete_path(resource: web.AbstractResource) -> str:
    info = resource.get_info()
    if "path" in info:
        return info["path"]
    if "prefix" in info:  # a static directory: some file below it
        return info["prefix"].rstrip("/") + "/x.css"
    formatter, pattern = info["formatter"], info["pattern"]
    names = PARAM.findall(formatter)
    for values in itertools.product(DUMMY_VALUES, repeat=len(names)):
        path = formatter
        for name, value in zip(names, values):
            path = path.replace("{" + name + "}", value, 1)
        if pattern.fullmatch(path):
            return path
    raise AssertionError(f"no dummy value fits the parameters of {formatter}")


def walk(app: web.Application) -> Iterator[Route]:
    """Every (method, route) of the app; ``*`` routes are walked as GET and POST."""
    for resource in app.router.resources():
        assert not isinstance(resource, web.PrefixedSubAppResource), "sub-applications: extend tests/web/routes.py"
        path = concrete_path(resource)
        for route in resource:
            methods = ("GET", "POST") if route.method == "*" else (route.method,)
            for method in methods:
                yield Route(method, resource.canonical, path, route.handler)
