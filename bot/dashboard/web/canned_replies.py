"""Canned replies on the dashboard (the logic is :mod:`bot.dashboard.staff.canned_replies`).

* ``GET /staff/api/canned-replies``: every reply, for the reply box's "/" list (any staff member);
* ``/staff/admin/canned-replies``: the admins' page to add, change and delete them, plain forms
  with the CSRF token like the accounts page; a change answers with a 303 back to the page
  (``?done=<fixed word>``), a refused one re-renders the page with the reason and what was typed.

When the app starts with no canned reply stored, the defaults of ``data/staff/canned_replies.yml``
are added.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Optional

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.dashboard.staff import canned_replies
from bot.dashboard.staff.canned_replies import CannedReplyError, ReplyNotFound
from bot.dashboard.web import auth
from bot.dashboard.web.keys import DB
from bot.dashboard.web.urls import url_for

logger = logging.getLogger(__name__)

#: How long the seeding may wait for the store before it gives up until the next start.
SEED_TIMEOUT_SECONDS = 10.0
SEEDING = web.AppKey("canned_replies_seeding", asyncio.Task)

PAGE = "/staff/admin/canned-replies"
ONE = PAGE + "/{reply_id:[0-9]{1,9}}"
API = "/staff/api/canned-replies"
PAGE_ROUTE = "staff_admin_canned_replies"
DONE = {
    "created": "Canned reply added.",
    "updated": "Canned reply saved.",
    "deleted": "Canned reply deleted.",
}


async def _replies(request: web.Request) -> list:
    """The canned replies, once the start's seeding (if still under way) is over."""
    seeding = request.config_dict.get(SEEDING)
    if seeding is not None and not seeding.done():
        await asyncio.shield(seeding)
    async with request.config_dict[DB]() as session:
        return await canned_replies.list_replies(session)


async def list_api(request: web.Request) -> web.Response:
    """GET: every canned reply, in the list's order."""
    replies = await _replies(request)
    return web.json_response({"replies": [reply.to_dict() for reply in replies]},
                             headers={"Cache-Control": "no-store"})


async def _render(request: web.Request, *, status: int = 200, error: str = "", draft: Optional[dict] = None,
                  editing: Optional[int] = None) -> web.Response:
    replies = await _replies(request)
    return aiohttp_jinja2.render_template("staff/canned_replies.html", request, {
        "section": "canned_replies",
        "replies": replies,
        "done": DONE.get(request.query.get("done", ""), ""),
        "error": error,
        "draft": draft or {},
        "editing": editing,
        "limits": {"shortcut": canned_replies.MAX_SHORTCUT, "title": canned_replies.MAX_TITLE,
                   "body": canned_replies.MAX_BODY, "position": canned_replies.MAX_POSITION},
    }, status=status)


@auth.require_role("admin")
async def page(request: web.Request) -> web.StreamResponse:
    """GET: the canned replies and the forms to change them."""
    return await _render(request)


def _draft(form: Any) -> dict[str, str]:
    return {key: form.get(key) if isinstance(form.get(key), str) else "" for key in ("shortcut", "title", "body",
                                                                                      "position")}


def _done(request: web.Request, key: str) -> web.Response:
    return auth.see_other(url_for(request, PAGE_ROUTE, query={"done": key}))


def _refused(exc: CannedReplyError) -> str:
    message = str(exc)
    return message[:1].upper() + message[1:] + "."


@auth.require_role("admin")
async def create_form(request: web.Request) -> web.StreamResponse:
    """POST: add a canned reply."""
    form = await request.post()
    draft = _draft(form)
    try:
        fields = canned_replies.check(draft["shortcut"], draft["title"], draft["body"], draft["position"] or "0")
        async with request.config_dict[DB]() as session:
            async with session.begin():
                await canned_replies.create(session, fields, request[auth.STAFF].username)
    except CannedReplyError as exc:
        return await _render(request, status=400, error=_refused(exc), draft=draft)
    return _done(request, "created")


@auth.require_role("admin")
async def update_form(request: web.Request) -> web.StreamResponse:
    """POST: change a canned reply."""
    reply_id = int(request.match_info["reply_id"])
    form = await request.post()
    draft = _draft(form)
    try:
        fields = canned_replies.check(draft["shortcut"], draft["title"], draft["body"], draft["position"] or "0")
        async with request.config_dict[DB]() as session:
            async with session.begin():
                await canned_replies.update(session, reply_id, fields, request[auth.STAFF].username)
    except ReplyNotFound as exc:
        return await _render(request, status=404, error=_refused(exc))
    except CannedReplyError as exc:
        return await _render(request, status=400, error=_refused(exc), draft=draft, editing=reply_id)
    return _done(request, "updated")


@auth.require_role("admin")
async def delete_form(request: web.Request) -> web.StreamResponse:
    """POST: delete a canned reply."""
    reply_id = int(request.match_info["reply_id"])
    try:
        async with request.config_dict[DB]() as session:
            async with session.begin():
                await canned_replies.delete(session, reply_id)
    except ReplyNotFound as exc:
        return await _render(request, status=404, error=_refused(exc))
    return _done(request, "deleted")


async def _seed(app: web.Application) -> None:
    try:
        defaults = canned_replies.load_defaults()
    except (OSError, CannedReplyError) as exc:
        logger.error("the default canned replies could not be read: %s", exc)
        return

    async def seed() -> int:
        async with app[DB]() as session:
            async with session.begin():
                return await canned_replies.seed_if_empty(session, defaults)

    try:
        added = await asyncio.wait_for(seed(), SEED_TIMEOUT_SECONDS)
    except (SQLAlchemyError, OSError, asyncio.TimeoutError) as exc:
        logger.warning("the default canned replies were not added (%s); they are tried again at the next start",
                       type(exc).__name__)
        return
    if added:
        logger.info("added %d default canned replies", added)


async def seed_defaults(app: web.Application) -> None:
    """On start: add the default replies when the table is empty (a store not migrated yet is left alone).

    In the background: the web app answers (``/healthz`` included) while the store is down or hangs.
    """
    app[SEEDING] = asyncio.create_task(_seed(app), name="seed canned replies")


async def stop_seeding(app: web.Application) -> None:
    task = app.get(SEEDING)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup(app: web.Application) -> None:
    """Register the canned replies' routes and the seeding of the defaults."""
    app.on_startup.append(seed_defaults)
    app.on_cleanup.insert(0, stop_seeding)
    router = app.router
    router.add_get(API, list_api, name="staff_api_canned_replies")
    router.add_get(PAGE, page, name=PAGE_ROUTE)
    router.add_post(PAGE, create_form, name="staff_admin_canned_replies_create")
    router.add_post(ONE, update_form, name="staff_admin_canned_replies_update")
    router.add_post(ONE + "/delete", delete_form, name="staff_admin_canned_replies_delete")
