"""Every unsafe request from a dashboard session needs the session's CSRF token."""

from __future__ import annotations

from tests.web.routes import walk

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def unsafe_staff_routes(app):
    return [route for route in walk(app) if route.method in UNSAFE and route.template.startswith("/staff")]


async def test_there_are_unsafe_routes_to_check(staff_app):
    templates = {route.template for route in unsafe_staff_routes(staff_app)}

    assert {"/staff/logout", "/staff/admin/users", "/staff/account/password"} <= templates


async def test_every_unsafe_staff_route_refuses_a_session_request_without_the_token(staff_app, admin_client):
    """An admin session passes every role check, so a 403 here can only be the missing token."""
    for route in unsafe_staff_routes(staff_app):
        for body in ({}, {"data": {"anything": "1"}}, {"json": {"anything": 1}}):
            reply = await admin_client.request(route.method, route.path, allow_redirects=False, **body)
            assert reply.status == 403, (route.method, route.template, body, reply.status)
    assert (await admin_client.get("/staff/api/me")).status == 200  # still signed in: nothing ran


async def test_a_wrong_or_another_sessions_token_is_refused(admin_client, staff_client):
    for token in ("", "x", staff_client.csrf):
        reply = await admin_client.post("/staff/logout", headers={"X-CSRF-Token": token}, allow_redirects=False)
        assert reply.status == 403
    assert (await admin_client.get("/staff/api/me")).status == 200


async def test_the_token_works_as_a_header_or_a_form_field(staff_client, admin_client):
    by_header = await staff_client.post("/staff/logout", headers={"X-CSRF-Token": staff_client.csrf}, allow_redirects=False)
    by_field = await admin_client.post("/staff/logout", data={"csrf_token": admin_client.csrf}, allow_redirects=False)

    assert by_header.status == by_field.status == 303
    assert (await staff_client.get("/staff/api/me")).status == 401
    assert (await admin_client.get("/staff/api/me")).status == 401


async def test_the_token_is_in_every_dashboard_page_for_scripts(staff_client):
    page = await staff_client.get("/staff/account/password")

    assert f'<meta name="csrf-token" content="{staff_client.csrf}">' in await page.text()
