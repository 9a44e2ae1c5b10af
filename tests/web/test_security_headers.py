"""The web app's security headers and the short list of files it serves."""

from __future__ import annotations

import pytest

from bot.core.settings import Settings
from bot.dashboard.web.app import create_app, public_assets
from bot.dashboard.web.security import content_security_policy, rasa_origins

HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=db_url,
        public_rasa_url="https://chat.example-clinic.org:5005",
        notify_interval_seconds=3600,
    )


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


@pytest.mark.parametrize(
    ("path", "status"),
    [("/", 200), ("/static/widget/chat-widget.js", 200), ("/static/no-such-file", 404), ("/nowhere", 404)],
)
async def test_every_response_carries_the_security_headers(client, path, status):
    reply = await client.get(path)

    assert reply.status == status
    assert all(name in reply.headers for name in HEADERS)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    # No framework or version for a scanner to match.
    assert reply.headers["Server"] == "clinic-assistant"


async def test_a_method_error_carries_the_headers_too(client):
    reply = await client.post("/")

    assert reply.status == 405
    assert "Content-Security-Policy" in reply.headers


def test_the_policy_allows_only_this_origin_and_the_rasa_server(settings):
    policy = dict(part.split(" ", 1) for part in content_security_policy(settings).split("; "))

    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"
    assert policy["connect-src"] == "'self' https://chat.example-clinic.org:5005 wss://chat.example-clinic.org:5005"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'self'"


@pytest.mark.parametrize(
    ("url", "origins"),
    [
        ("http://127.0.0.1:5005", ["http://127.0.0.1:5005", "ws://127.0.0.1:5005"]),
        ("https://chat.example.org/", ["https://chat.example.org", "wss://chat.example.org"]),
        ("", []),
    ],
)
def test_rasa_origins_pair_http_with_ws(url, origins):
    assert rasa_origins(url) == origins


async def test_the_demo_page_has_no_inline_script_or_style(client):
    page = await (await client.get("/")).text()

    assert "<style" not in page and "style=" not in page
    assert "<script>" not in page and "<script " in page  # scripts only by src
    assert 'href="/static/demo.css"' in page


@pytest.mark.parametrize(
    "path",
    [
        "/static/widget/chat-widget.js",
        "/static/widget/chat-widget.css",
        "/static/widget/i18n/en.js",
        "/static/widget/i18n/de.js",
        "/static/demo.css",
    ],
)
async def test_the_widget_files_are_served(client, path):
    reply = await client.get(path)

    assert reply.status == 200
    assert reply.headers["Content-Type"].split(";")[0] in {"text/javascript", "application/javascript", "text/css"}


@pytest.mark.parametrize(
    "path",
    [
        "/static/widget/size_report.py",
        "/static/widget/",
        "/static/widget",
        "/static/",
        "/static/widget/i18n/",
        "/static/widget/i18n/xx.js",
        "/static/widget/../app.py",
        "/static/widget/%2e%2e/%2e%2e/app.py",
        "/static/..%2f..%2fsettings.py",
        "/static/widget/chat-widget.js.map",
    ],
)
async def test_nothing_else_under_static_is_served(client, path):
    reply = await client.get(path)

    assert reply.status == 404
    assert "import" not in await reply.text()


def test_the_public_assets_are_exactly_the_widget_files_and_the_demo_stylesheet():
    assets = public_assets()

    assert "widget/size_report.py" not in assets
    assert {"widget/chat-widget.js", "widget/chat-widget.css", "widget/i18n/en.js", "demo.css"} <= assets
    assert all(name.endswith((".js", ".css")) for name in assets)
