"""Web Push to staff browsers (issue 22): the VAPID key, the message, the sender, the routes.

The sender is tested against a local stand-in for a push service: an aiohttp server on
127.0.0.1 that plays the browser's side too. It holds the browser's keys, so it checks what
a real push service and browser would: the VAPID ``Authorization`` header (an ES256 JWT
signed with the dashboard's key, for this origin, with the clinic's contact), the
``aes128gcm`` encoding, and the plaintext once decrypted. An urgent escalation stored by the
escalation service, as the action server stores it, must reach it within 5 s of the
notifier running. Here, not in tests/notify: pywebpush is in the web app's environment only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import http_ece
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import select, update

from bot.core import secrets
from bot.core.clinic import Clinic
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.settings import Settings
from bot.core.store.models import (
    AuditEvent, AuditKind, Escalation, Priority, PushSubscription, Reason, StaffUser, Status, utcnow,
)
from bot.core.store.repository import EscalationInput
from bot.dashboard.notify import web_push
from bot.dashboard.notify.worker import Notifier
from bot.dashboard.web import push_routes
from bot.dashboard.web.app import create_app

PATIENT_TEXT = "my arm went numb after the needling and my chest hurts"
PATIENT_NAME = "Jo Patient"
CONTACT = "hello@clinic.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the key and the message -------------------------------------------------------------------


def test_make_secrets_creates_a_p256_vapid_key_once_and_never_replaces_it(tmp_path):
    assert secrets.VAPID_PRIVATE_KEY in secrets.ensure(tmp_path)
    path = secrets.vapid_private_key_path(tmp_path)
    pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert path.stat().st_mode & 0o077 == 0

    assert secrets.ensure(tmp_path) == []
    assert path.read_bytes() == pem


def test_an_existing_vapid_key_is_kept(tmp_path):
    mine = secrets.new_vapid_private_key()
    path = secrets.vapid_private_key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(mine)

    assert secrets.VAPID_PRIVATE_KEY not in secrets.ensure(tmp_path)
    assert path.read_text() == mine


def test_reading_the_key_never_creates_it(tmp_path):
    assert web_push.load_vapid(tmp_path) is None
    assert not secrets.folder(tmp_path).exists()


def test_the_application_server_key_is_the_uncompressed_public_point(tmp_path):
    secrets.ensure(tmp_path)
    vapid = web_push.load_vapid(tmp_path)
    key = web_push.application_server_key(vapid)

    assert "=" not in key and "+" not in key and "/" not in key
    point = unb64url(key)
    assert len(point) == 65 and point[0] == 4
    private = serialization.load_pem_private_key(secrets.vapid_private_key_path(tmp_path).read_bytes(), None)
    assert point == private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def test_the_payload_is_the_case_link_only():
    case_id = "6f1c1f7e-2a4b-4c8e-9d3f-0a1b2c3d4e5f"
    assert json.loads(web_push.payload(case_id)) == {"url": f"/staff/escalations/{case_id}"}
    assert json.loads(web_push.payload("a/b?c"))["url"] == "/staff/escalations/a%2Fb%3Fc"


def test_the_contact_is_the_clinic_email_else_notify_from(tmp_path):
    settings = Settings(var_dir=tmp_path, notify_from="assistant@clinic.example")
    clinic = Clinic(name="Riverside", phone="020 7946 0958", booking_url="https://clinic.example/book")

    assert web_push.subject(Clinic(**{**clinic.__dict__, "email": CONTACT}), settings) == f"mailto:{CONTACT}"
    assert web_push.subject(clinic, settings) == "mailto:assistant@clinic.example"
    assert web_push.subject(clinic, Settings(var_dir=tmp_path, notify_from="")) is None


def test_logs_show_the_push_service_host_never_the_endpoint():
    assert web_push.redacted("https://fcm.googleapis.com/fcm/send/secret-token") == "fcm.googleapis.com/…"


@pytest.mark.parametrize("body, allow_http, problem", [
    ({"endpoint": "http://push.example/x", "keys": {}}, False, "https"),
    ({"endpoint": "https://push.example/x"}, False, "keys"),
    ({"endpoint": "https://push.example/x", "keys": {"p256dh": b64url(b"\x04" * 10), "auth": b64url(b"a" * 16)}},
     False, "p256dh"),
    ({"endpoint": "https://push.example/x", "keys": {"p256dh": b64url(b"\x04" * 65), "auth": b64url(b"a" * 8)}},
     False, "auth"),
    ({"endpoint": "javascript:alert(1)", "keys": {}}, True, "https"),
    ([], True, "URL"),
])
def test_a_subscription_that_cannot_be_used_is_refused(body, allow_http, problem):
    with pytest.raises(push_routes.InvalidSubscription, match=problem):
        push_routes.parse(body, allow_http)


# --- a stand-in push service (and browser) on loopback -----------------------------------------


@dataclass
class Browser:
    """A subscribed browser's keys (what the push service's client holds)."""

    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def verify_vapid(header: str, origin: str) -> dict:
    """The claims of a ``vapid t=<jwt>,k=<key>`` header whose ES256 signature checks with ``k``."""
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid", header
    parts = dict(part.split("=", 1) for part in params.split(","))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    head, body, signature = parts["t"].split(".")
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # InvalidSignature if forged
    assert json.loads(unb64url(head)) == {"typ": "JWT", "alg": "ES256"}
    claims = json.loads(unb64url(body))
    assert claims["aud"] == origin
    assert claims["exp"] > time.time()
    return {**claims, "k": parts["k"]}


class PushService:
    """Accepts Web Push POSTs at /push/{token}, checks them, decrypts them, records them."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.browsers: dict[str, Browser] = {}
        self.answer: dict[str, int] = {}  # token -> status to answer instead of 201
        self.refused: list[str] = []
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def start(self) -> "PushService":
        app = web.Application()
        app.router.add_post("/push/{token}", self.push)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port chosen by the OS
        self.origin = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    def subscribe(self) -> tuple[str, Browser]:
        token = b64url(os.urandom(24))
        self.browsers[token] = Browser()
        return token, self.browsers[token]

    def endpoint(self, token: str) -> str:
        return f"{self.origin}/push/{token}"

    async def push(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        browser = self.browsers.get(token)
        if browser is None:
            return web.Response(status=404)
        if token in self.answer:
            return web.Response(status=self.answer[token])
        body = await request.read()
        try:
            claims = verify_vapid(request.headers.get("Authorization", ""), self.origin)
            assert request.headers.get("Content-Encoding") == "aes128gcm"
            assert int(request.headers["TTL"]) > 0
            plaintext = http_ece.decrypt(body, private_key=browser.private, auth_secret=browser.auth,
                                         version="aes128gcm")
        except (AssertionError, InvalidSignature, KeyError, ValueError) as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
            return web.Response(status=400)
        self.received.append({"token": token, "claims": claims, "data": json.loads(plaintext),
                              "urgency": request.headers.get("Urgency")})
        return web.Response(status=201)


@pytest.fixture
async def push_service():
    service = await PushService().start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def push_settings(tmp_path, db_url) -> Settings:
    settings = Settings(var_dir=tmp_path / "var", database_url=db_url, public_web_url="https://clinic.example",
                        notify_interval_seconds=0.2)
    secrets.ensure(settings.var_dir)
    return settings


@pytest.fixture
def clinic() -> Clinic:
    return Clinic(name="Riverside", phone="020 7946 0958", booking_url="https://clinic.example/book", email=CONTACT)


@pytest.fixture
def escalations(push_settings, sessions) -> EscalationService:
    return EscalationService(sessions, Spool(push_settings.spool_dir), [])


def urgent_input(sender: str = "conv-1") -> EscalationInput:
    return EscalationInput(
        sender_id=sender, channel="socketio", reason=Reason.emergency, priority=Priority.urgent,
        trigger={"matched_terms": ["chest pain"], "text_excerpt": PATIENT_TEXT},
        transcript=[{"role": "user", "text": PATIENT_TEXT}], contact_name=PATIENT_NAME,
        contact_method="phone", contact_detail="07700 900123", consent_given=True,
    )


async def subscribe(sessions, user: StaffUser, service: PushService) -> tuple[int, str, Browser]:
    token, browser = service.subscribe()
    async with sessions() as session, session.begin():
        row = PushSubscription(user_id=user.id, endpoint=service.endpoint(token), p256dh=browser.p256dh,
                               auth=b64url(browser.auth))
        session.add(row)
        await session.flush()
        return row.id, token, browser


async def push_audits(sessions, escalation_id: str) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.escalation_id == escalation_id,
                                         AuditEvent.actor == web_push.ACTOR).order_by(AuditEvent.id)
        return list((await session.execute(query)).scalars())


async def subscription(sessions, row_id: int) -> PushSubscription | None:
    async with sessions() as session:
        return await session.get(PushSubscription, row_id)


async def until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


# --- the sender --------------------------------------------------------------------------------


async def test_a_new_urgent_case_is_pushed_to_every_subscribed_browser_within_5_s(
    push_service, push_settings, clinic, sessions, escalations, make_user,
):
    sam = await make_user("sam")
    ada = await make_user("ada", role="admin")
    _, sam_token, _ = await subscribe(sessions, sam, push_service)
    _, ada_token, _ = await subscribe(sessions, ada, push_service)
    notifier = Notifier(push_settings, clinic, sessions, escalations)
    stop = asyncio.Event()
    running = asyncio.create_task(notifier.run_forever(stop))
    try:
        outcome = await escalations.escalate(urgent_input())
        assert outcome.stored
        await until(lambda: len(push_service.received) == 2)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)

    assert push_service.refused == []
    assert {push["token"] for push in push_service.received} == {sam_token, ada_token}
    public_key = web_push.application_server_key(web_push.load_vapid(push_settings.var_dir))
    for push in push_service.received:
        assert push["data"] == {"url": f"/staff/escalations/{outcome.escalation_id}"}
        assert push["claims"]["sub"] == f"mailto:{CONTACT}"
        assert push["claims"]["k"] == public_key
        assert push["urgency"] == "high"
        assert PATIENT_NAME not in json.dumps(push) and "numb" not in json.dumps(push)
    [audit] = await push_audits(sessions, outcome.escalation_id)
    assert audit.kind == AuditKind.notification_sent
    assert audit.detail == {"transport": "web_push", "delivered": 2, "failed": 0, "gone": 0}


async def test_each_case_is_pushed_once_and_only_urgent_new_recent_ones(
    push_service, push_settings, clinic, sessions, escalations, make_user,
):
    sam = await make_user("sam")
    row_id, _, _ = await subscribe(sessions, sam, push_service)
    alerts = web_push.WebPushAlerts.from_settings(push_settings, clinic, sessions)
    urgent = (await escalations.escalate(urgent_input("conv-1"))).escalation_id
    high = (await escalations.escalate(
        EscalationInput(**{**urgent_input("conv-2").__dict__, "priority": Priority.high,
                           "reason": Reason.adverse_event}))).escalation_id
    handled = (await escalations.escalate(urgent_input("conv-3"))).escalation_id
    old = (await escalations.escalate(urgent_input("conv-4"))).escalation_id
    async with sessions() as session, session.begin():
        await session.execute(update(Escalation).where(Escalation.id == handled).values(status=Status.in_progress))
        await session.execute(update(Escalation).where(Escalation.id == old).values(
            created_at=utcnow() - web_push.LOOKBACK - web_push.LOOKBACK))

    assert await alerts.run_once() == [urgent]
    assert await alerts.run_once() == []
    assert [push["data"]["url"] for push in push_service.received] == [f"/staff/escalations/{urgent}"]
    assert await push_audits(sessions, high) == [] and await push_audits(sessions, old) == []
    assert (await subscription(sessions, row_id)).last_success_at is not None


async def test_disabled_accounts_and_accounts_with_notifications_off_are_not_pushed(
    push_service, push_settings, clinic, sessions, escalations, make_user,
):
    quiet = await make_user("quiet")
    gone = await make_user("gone")
    await subscribe(sessions, quiet, push_service)
    await subscribe(sessions, gone, push_service)
    async with sessions() as session, session.begin():
        await session.execute(update(StaffUser).where(StaffUser.id == quiet.id).values(alert_notifications=False))
        await session.execute(update(StaffUser).where(StaffUser.id == gone.id).values(disabled_at=utcnow()))
    alerts = web_push.WebPushAlerts.from_settings(push_settings, clinic, sessions)
    case = (await escalations.escalate(urgent_input())).escalation_id

    assert await alerts.run_once() == []
    assert push_service.received == []
    assert await push_audits(sessions, case) == []  # nobody to tell: nothing recorded, nothing given up


async def test_a_subscription_the_push_service_dropped_is_deleted(
    push_service, push_settings, clinic, sessions, escalations, make_user,
):
    sam = await make_user("sam")
    dropped_id, dropped, _ = await subscribe(sessions, sam, push_service)
    kept_id, _, _ = await subscribe(sessions, sam, push_service)
    push_service.answer[dropped] = 410
    alerts = web_push.WebPushAlerts.from_settings(push_settings, clinic, sessions)
    case = (await escalations.escalate(urgent_input())).escalation_id

    assert await alerts.run_once() == [case]
    assert await subscription(sessions, dropped_id) is None
    assert await subscription(sessions, kept_id) is not None
    [audit] = await push_audits(sessions, case)
    assert audit.detail["gone"] == 1 and audit.detail["delivered"] == 1


async def test_a_failing_push_is_counted_and_retried_then_given_up(
    push_service, push_settings, clinic, sessions, escalations, make_user, caplog,
):
    sam = await make_user("sam")
    row_id, token, _ = await subscribe(sessions, sam, push_service)
    push_service.answer[token] = 503
    alerts = web_push.WebPushAlerts.from_settings(push_settings, clinic, sessions)
    case = (await escalations.escalate(urgent_input())).escalation_id

    assert await alerts.run_once() == []
    assert (await subscription(sessions, row_id)).failures == 1
    assert await push_audits(sessions, case) == []  # tried again on the next pass

    del push_service.answer[token]
    assert await alerts.run_once() == [case]
    row = await subscription(sessions, row_id)
    assert row.failures == 0 and row.last_success_at is not None
    assert len(push_service.received) == 1

    push_service.answer[token] = 500
    other = (await escalations.escalate(urgent_input("conv-2"))).escalation_id
    for _ in range(web_push.MAX_ATTEMPTS):
        await alerts.run_once()
    [audit] = await push_audits(sessions, other)
    assert audit.kind == AuditKind.notification_failed and audit.detail["attempts"] == web_push.MAX_ATTEMPTS
    assert token not in caplog.text  # the endpoint is a capability: never logged
    assert "127.0.0.1/…" in caplog.text


async def test_without_a_key_or_a_contact_nothing_is_pushed(tmp_path, db_url, clinic, sessions):
    bare = Settings(var_dir=tmp_path / "bare", database_url=db_url)
    assert not web_push.WebPushAlerts.from_settings(bare, clinic, sessions).active
    assert not secrets.folder(bare.var_dir).exists()
    keyed = Settings(var_dir=tmp_path / "keyed", database_url=db_url, notify_from="")
    secrets.ensure(keyed.var_dir)
    anonymous = Clinic(name="Riverside", phone="020 7946 0958", booking_url="https://clinic.example/book")
    assert not web_push.WebPushAlerts.from_settings(keyed, anonymous, sessions).active


# --- the dashboard's routes --------------------------------------------------------------------


@pytest.fixture
def staff_app(staff_settings):
    """The dashboard with a VAPID key made, as ``make secrets`` makes it (the repository's clinic.yml has an email)."""
    secrets.ensure(staff_settings.var_dir)
    return create_app(staff_settings)


def browser_subscription(endpoint: str) -> dict:
    browser = Browser()
    keys = {"p256dh": browser.p256dh, "auth": b64url(browser.auth)}
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys}


async def test_the_dashboard_serves_the_key_and_the_service_worker(staff_client, staff_settings):
    reply = await staff_client.get("/staff/api/push-subscriptions")
    assert reply.status == 200
    config = await reply.json()
    assert config["public_key"] == web_push.application_server_key(web_push.load_vapid(staff_settings.var_dir))
    assert config["service_worker"] == "/staff/sw.js" and config["scope"] == "/staff/"

    worker = await staff_client.get(config["service_worker"])
    assert worker.status == 200
    assert worker.content_type == "text/javascript"
    assert "no-store" in worker.headers["Cache-Control"] or "no-cache" in worker.headers["Cache-Control"]
    script = await worker.text()
    assert 'addEventListener("push"' in script and 'addEventListener("notificationclick"' in script


async def test_a_signed_in_browser_subscribes_and_unsubscribes(staff_client, staff_db):
    body = browser_subscription("https://push.example/send/abc")
    headers = {"X-CSRF-Token": staff_client.csrf}

    first = await staff_client.post("/staff/api/push-subscriptions", json=body, headers=headers)
    again = await staff_client.post("/staff/api/push-subscriptions", json=body, headers=headers)
    assert (first.status, again.status) == (201, 200)
    async with staff_db() as session:
        rows = list((await session.execute(select(PushSubscription, StaffUser.username).join(
            StaffUser, StaffUser.id == PushSubscription.user_id))).all())
    assert [(row.endpoint, name) for row, name in rows] == [("https://push.example/send/abc", "sam")]
    assert rows[0][0].p256dh == body["keys"]["p256dh"]

    gone = await staff_client.delete("/staff/api/push-subscriptions", json={"endpoint": body["endpoint"]},
                                     headers=headers)
    assert gone.status == 204
    async with staff_db() as session:
        assert (await session.execute(select(PushSubscription))).first() is None


async def test_subscribing_needs_the_csrf_token_and_a_signed_in_account(staff_client, anon_client, staff_db):
    body = browser_subscription("https://push.example/send/abc")

    assert (await staff_client.post("/staff/api/push-subscriptions", json=body)).status == 403
    assert (await staff_client.delete("/staff/api/push-subscriptions", json=body)).status == 403
    assert (await anon_client.post("/staff/api/push-subscriptions", json=body)).status == 401
    assert (await anon_client.get("/staff/api/push-subscriptions")).status == 401
    bad = await staff_client.post("/staff/api/push-subscriptions", json={"endpoint": "https://push.example/x"},
                                  headers={"X-CSRF-Token": staff_client.csrf})
    assert bad.status == 400
    async with staff_db() as session:
        assert (await session.execute(select(PushSubscription))).first() is None


async def test_one_account_cannot_remove_another_accounts_subscription(
    aiohttp_client, staff_server, staff_client, make_user, staff_db,
):
    from tests.web.conftest import signed_in_client

    body = browser_subscription("https://push.example/send/sams")
    await staff_client.post("/staff/api/push-subscriptions", json=body, headers={"X-CSRF-Token": staff_client.csrf})
    await make_user("kim")
    kim = await signed_in_client(aiohttp_client, staff_server, "kim")

    reply = await kim.delete("/staff/api/push-subscriptions", json={"endpoint": body["endpoint"]},
                             headers={"X-CSRF-Token": kim.csrf})
    assert reply.status == 204
    async with staff_db() as session:
        assert len((await session.execute(select(PushSubscription))).all()) == 1


async def test_the_page_tells_alerts_js_where_to_subscribe(staff_client):
    page = await staff_client.get("/staff/")
    assert 'data-push-url="/staff/api/push-subscriptions"' in await page.text()


def test_without_a_vapid_key_the_dashboard_offers_no_push(staff_settings):
    app = create_app(staff_settings)
    assert app[push_routes.PUBLIC_KEY] is None
    assert not Path(staff_settings.var_dir, "secrets").exists()
