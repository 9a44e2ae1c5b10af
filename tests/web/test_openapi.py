"""The OpenAPI document describes exactly the staff API the app registers, and the app serves it."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from bot.dashboard.web.api import openapi_document

METHODS = {"get", "post", "put", "patch", "delete"}


def app_routes(app) -> set[tuple[str, str]]:
    """(path, method) of every route under /staff/api/, HEAD (added with each GET) left out."""
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/staff/api/") and route.method != "HEAD":
            found.add((path, route.method.lower()))
    return found


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_the_document_lists_exactly_the_registered_staff_api_routes(staff_app):
    registered = app_routes(staff_app)
    documented = documented_routes(openapi_document())

    assert registered, "no /staff/api/ routes registered"
    assert documented - registered == set(), "documented but not registered"
    assert registered - documented == set(), "registered but not documented"


def test_the_comparison_notices_a_missing_route(staff_app):
    document = openapi_document()
    trimmed = {**document, "paths": {k: v for k, v in document["paths"].items() if k != "/staff/api/escalations"}}

    assert documented_routes(trimmed) != app_routes(staff_app)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_document_is_openapi_3_1_and_every_reference_resolves():
    document = openapi_document()

    assert document["openapi"] == "3.1.0"
    assert {"title", "version"} <= set(document["info"])
    for ref in set(refs(document)):
        assert resolve(document, ref) is not None, ref


def test_every_operation_has_a_unique_id_responses_and_its_path_parameters():
    document = openapi_document()
    ids = []
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method not in METHODS:
                continue
            ids.append(operation["operationId"])
            assert operation["responses"], (path, method)
            assert "401" in operation["responses"], (path, method)
            declared = {
                (resolve(document, p["$ref"]) if "$ref" in p else p)["name"]
                for p in shared + operation.get("parameters", [])
                if (resolve(document, p["$ref"]) if "$ref" in p else p)["in"] == "path"
            }
            assert declared == set(re.findall(r"{(\w+)}", path)), (path, method)
    assert len(ids) == len(set(ids))


def test_search_text_is_never_a_query_parameter():
    document = openapi_document()
    for item in document["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = resolve(document, parameter["$ref"])
                assert parameter["name"] not in {"search", "q", "text"}


async def test_the_app_serves_the_document_to_signed_in_staff(staff_client):
    reply = await staff_client.get("/staff/api/openapi.json")

    assert reply.status == 200 and reply.content_type == "application/json"
    document = await reply.json()
    assert document["openapi"] == "3.1.0" and "/staff/api/escalations" in document["paths"]
    assert document["servers"] == [{"url": "http://127.0.0.1:8000"}]


async def test_anonymous_visitors_do_not_get_the_document(anon_client):
    assert (await anon_client.get("/staff/api/openapi.json")).status == 401


@pytest.mark.parametrize("route", ["/staff/api/escalations/{id}", "/staff/api/escalations/export.csv"])
def test_key_routes_are_described(route):
    assert route in openapi_document()["paths"]
