"""Canned replies: the module's checks, the defaults from the data file, the staff list, the admins' page."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.store.models import CannedReply
from bot.dashboard.staff import canned_replies
from bot.dashboard.staff.canned_replies import CannedReplyError, ReplyNotFound, check


# --- the module -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shortcut", ["", "Call", "call back", "é", "a" * 33, "call_back", "<b>"])
def test_a_shortcut_is_lower_case_letters_digits_and_hyphens(shortcut):
    with pytest.raises(CannedReplyError, match="shortcut"):
        check(shortcut, "Title", "Body")


def test_titles_and_texts_are_required_and_bounded():
    assert check("/call-back", " Call back ", " Text ") == canned_replies.ReplyFields("call-back", "Call back", "Text", 0)
    with pytest.raises(CannedReplyError, match="title"):
        check("x", "t" * 81, "Body")
    with pytest.raises(CannedReplyError, match="text"):
        check("x", "Title", "b" * 2001)
    with pytest.raises(CannedReplyError, match="text is missing"):
        check("x", "Title", "   ")
    with pytest.raises(CannedReplyError, match="position"):
        check("x", "Title", "Body", "-1")


async def test_create_update_delete_and_unique_shortcuts(staff_db):
    async with staff_db() as session, session.begin():
        first = await canned_replies.create(session, check("one", "One", "First"), "ada")
        await canned_replies.create(session, check("two", "Two", "Second", 5), "ada")
        with pytest.raises(CannedReplyError, match="already used"):
            await canned_replies.create(session, check("one", "Again", "Again"), "ada")
    async with staff_db() as session, session.begin():
        changed = await canned_replies.update(session, first.id, check("uno", "Uno", "Primero", 9), "bob")
        assert (changed.shortcut, changed.updated_by) == ("uno", "bob")
        with pytest.raises(CannedReplyError, match="already used"):
            await canned_replies.update(session, first.id, check("two", "Two", "Clash"), "bob")
    async with staff_db() as session, session.begin():
        assert [r.shortcut for r in await canned_replies.list_replies(session)] == ["two", "uno"]
        assert await canned_replies.delete(session, first.id) == "uno"
        with pytest.raises(ReplyNotFound):
            await canned_replies.delete(session, first.id)


def test_the_defaults_file_has_999_a_call_back_and_a_text_reply():
    defaults = {reply.shortcut: reply for reply in canned_replies.load_defaults()}

    assert "call 999 now" in defaults["999"].body.lower()
    assert "phone you back" in defaults["call-back"].body
    assert "text message" in defaults["text-you"].body


def test_a_bad_defaults_file_names_the_bad_entry(tmp_path: Path):
    path = tmp_path / "replies.yml"
    path.write_text('replies:\n  - {shortcut: "OK", title: "t", body: "b"}\n', encoding="utf-8")
    with pytest.raises(CannedReplyError, match="reply 1: the shortcut"):
        canned_replies.load_defaults(path)


# --- the app -------------------------------------------------------------------------------------


async def test_the_app_seeds_the_defaults_once_and_staff_can_list_them(staff_client, staff_db):
    reply = await staff_client.get("/staff/api/canned-replies")

    assert reply.status == 200
    listed = (await reply.json())["replies"]
    assert [r["shortcut"] for r in listed][:3] == ["999", "call-back", "text-you"]
    async with staff_db() as session:
        count = len((await session.execute(select(CannedReply.id))).all())
    assert count == len(canned_replies.load_defaults())


async def test_a_table_with_replies_is_not_seeded_again(staff_db):
    async with staff_db() as session, session.begin():
        await canned_replies.create(session, check("mine", "Mine", "Only this"), "ada")
        assert await canned_replies.seed_if_empty(session, canned_replies.load_defaults()) == 0


async def test_staff_cannot_open_or_change_the_admin_page(staff_client):
    assert (await staff_client.get("/staff/admin/canned-replies", allow_redirects=False)).status == 403
    posted = await staff_client.post("/staff/admin/canned-replies", allow_redirects=False,
                                     data={"csrf_token": staff_client.csrf, "shortcut": "x", "title": "X", "body": "X"})
    assert posted.status == 403


async def test_an_admin_adds_changes_and_deletes_a_reply(admin_client, staff_db):
    page = await (await admin_client.get("/staff/admin/canned-replies")).text()
    assert "/999" in page and "Canned replies" in page

    added = await admin_client.post("/staff/admin/canned-replies", allow_redirects=False, data={
        "csrf_token": admin_client.csrf, "shortcut": "parking", "title": "Parking", "body": "Park <b>behind</b>.",
        "position": "90"})
    assert added.status == 303 and added.headers["Location"].endswith("?done=created")
    page = await (await admin_client.get("/staff/admin/canned-replies")).text()
    assert "Park &lt;b&gt;behind&lt;/b&gt;." in page and "<b>behind</b>" not in page

    async with staff_db() as session:
        row = (await session.execute(select(CannedReply).where(CannedReply.shortcut == "parking"))).scalar_one()
    changed = await admin_client.post(f"/staff/admin/canned-replies/{row.id}", allow_redirects=False, data={
        "csrf_token": admin_client.csrf, "shortcut": "parking", "title": "Parking", "body": "Park in front.",
        "position": "90"})
    assert changed.status == 303
    refused = await admin_client.post(f"/staff/admin/canned-replies/{row.id}", data={
        "csrf_token": admin_client.csrf, "shortcut": "999", "title": "Clash", "body": "Clash", "position": "1"})
    assert refused.status == 400 and "The shortcut /999 is already used." in await refused.text()

    deleted = await admin_client.post(f"/staff/admin/canned-replies/{row.id}/delete", allow_redirects=False,
                                      data={"csrf_token": admin_client.csrf})
    assert deleted.status == 303
    async with staff_db() as session:
        assert await session.get(CannedReply, row.id) is None


async def test_admin_forms_need_the_csrf_token(admin_client):
    reply = await admin_client.post("/staff/admin/canned-replies", allow_redirects=False,
                                    data={"shortcut": "x", "title": "X", "body": "X"})
    assert reply.status == 403
