"""Dashboard links built from the app's named routes, never written out by hand.

Each route is registered once, with a name (``app.router.add_get(path, handler, name=...)``);
a link to it is ``router[name].url_for(**parts)``, its query string ``.with_query(...)``. A
route that moves then moves every link with it. Handlers and presenters call :func:`url_for`;
templates call aiohttp_jinja2's ``url()`` global (``{{ url("staff_case", id=summary.id|string) }}``),
which does the same.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from aiohttp import web

Query = Union[Sequence[tuple[str, Any]], dict[str, Any]]


def url_for(request: web.Request, name: str, *, query: Optional[Query] = None, fragment: str = "",
            **parts: Any) -> str:
    """The path (with ``query`` and ``#fragment``, when given) of the route ``name``, its ``parts`` filled in."""
    url = request.app.router[name].url_for(**{key: str(value) for key, value in parts.items()})
    if query:
        url = url.with_query(query)
    if fragment:
        url = url.with_fragment(fragment)
    return str(url)


def has_route(request: web.Request, name: str) -> bool:
    """Whether the app registers the route ``name`` (an optional part of the dashboard)."""
    return name in request.app.router.named_resources()
