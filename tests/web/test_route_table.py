"""Every route of the web app is public by design or refuses anonymous and wrong-role requests.

The table is walked after ``create_app`` (with every module's ``setup``), so a route
added later is checked without touching this file; a new public route must be
added to ``PUBLIC`` on purpose.
"""

from __future__ import annotations

import pytest

from tests.web.routes import walk

#: Public by design: the demo page, health, the widget's assets, the sign-in page, the dashboard's assets.
PUBLIC = {
    "/": {"GET", "HEAD"},
    "/healthz": {"GET", "HEAD"},
    "/static/{name}": {"GET", "HEAD"},
    "/staff/login": {"GET", "HEAD", "POST"},
}
PUBLIC_PREFIXES = ("/staff/static",)
ADMIN_PREFIXES = ("/staff/admin/", "/staff/api/users")


def is_public(route) -> bool:
    return route.method in PUBLIC.get(route.template, set()) or route.template.startswith(PUBLIC_PREFIXES)


def test_the_walk_finds_the_routes_of_every_module(staff_app):
    templates = {route.template for route in walk(staff_app)}

    assert {"/", "/healthz", "/staff/login", "/staff/logout", "/staff/admin/users"} <= templates
    assert len(templates) > 10


async def test_every_route_is_public_or_refuses_anonymous_requests(staff_app, anon_client):
    checked = []
    for route in walk(staff_app):
        if is_public(route):
            continue
        assert route.template == "/staff" or route.template.startswith("/staff/"), f"{route.method} {route.template} is neither public nor under /staff"
        reply = await anon_client.request(route.method, route.path, allow_redirects=False)
        if reply.status == 303:
            assert reply.headers["Location"].startswith("/staff/login"), (route.method, route.template)
        else:
            assert reply.status == 401, (route.method, route.template, reply.status)
        checked.append(route)
    assert len(checked) > 5


async def test_api_routes_answer_anonymous_requests_401_json(staff_app, anon_client):
    for route in walk(staff_app):
        if route.template.startswith("/staff/api/") and route.method != "HEAD":
            reply = await anon_client.request(route.method, route.path, allow_redirects=False)
            assert reply.status == 401, (route.method, route.template)
            assert (await reply.json())["error"] == "unauthenticated"


def test_admin_paths_are_marked_for_admins_only(staff_app):
    for route in walk(staff_app):
        if route.template.startswith(ADMIN_PREFIXES) and route.method != "HEAD":
            assert route.required_role == "admin", f"{route.method} {route.template} lacks @require_role('admin')"


async def test_admin_routes_refuse_a_staff_session(staff_app, staff_client):
    admin_routes = [route for route in walk(staff_app) if route.required_role == "admin"]
    assert admin_routes
    for route in admin_routes:
        reply = await staff_client.request(
            route.method, route.path, headers={"X-CSRF-Token": staff_client.csrf}, allow_redirects=False,
        )
        assert reply.status == 403, (route.method, route.template, reply.status)


async def test_admin_routes_refuse_a_staff_api_token(staff_app, anon_client, make_user, staff_db):
    from bot.dashboard.staff import accounts, tokens

    await make_user("tom")
    async with staff_db() as session, session.begin():
        token, _ = await tokens.issue(session, await accounts.get_user(session, "tom"), "script", actor="test")
    for route in walk(staff_app):
        if route.required_role == "admin":
            reply = await anon_client.request(route.method, route.path, headers={"Authorization": f"Bearer {token}"})
            assert reply.status == 403, (route.method, route.template, reply.status)


@pytest.mark.parametrize("path", ["/staff", "/staff/", "/staff/no-such-page", "/staff/api/no-such-thing"])
async def test_unknown_dashboard_paths_also_need_a_sign_in(anon_client, path):
    reply = await anon_client.get(path, allow_redirects=False)

    assert reply.status in (303, 401)
