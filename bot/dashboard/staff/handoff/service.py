"""Staff talking to a patient themselves: take over, send a line, hand back, state (every channel).

The Rasa server owns the conversation, so the web app asks it to act through the channel's
bridge (:mod:`bot.dashboard.staff.handoff.bridge`). Order of work, so nothing is lost and
nothing is claimed falsely:

* every line staff put into the conversation (the "has joined" notice, a message, the
  "the assistant is back" notice) is stored and audited first (:mod:`bot.core.store.chat`;
  audit details carry ids, never the text), then the bridge is asked to put it in;
* if the Rasa server cannot be reached or refuses, the line is marked failed and staff are
  told to try again: it never enters the conversation and is never sent later; a takeover
  the server did not confirm is closed again;
* one staff member at a time holds a conversation (a partial unique index); any staff
  member may hand it back, so a patient is never stranded when the holder goes home;
  taking over also takes the case (:func:`bot.dashboard.staff.cases.claim`).

What is the channel's own — which conversations it serves, the rules that refuse a line
before anything is stored, presence, what the patient is told, how the state reads — comes
from its :class:`~bot.dashboard.staff.handoff.policy.ChannelPolicy`:
:mod:`.web_chat` and :mod:`.sms`. Refusals are the domain errors of :mod:`.errors`.

Public API (everything else here is private):

* :class:`HandoffService` ``(sessions, policy, clinic)``, or built for a channel with
  :func:`bot.dashboard.staff.handoff.web_chat.web_chat_handoff` ``(sessions, bridge, clinic)`` /
  :func:`bot.dashboard.staff.handoff.sms.sms_handoff` ``(sessions, bridge, clinic, template_sid)``;
  in a request, :func:`bot.dashboard.web.handoff_routes.chat_service` /
  :func:`~bot.dashboard.web.handoff_routes.sms_service` ``(request)``. Its methods take the
  escalation id and the staff member (``.id``, ``.username``, ``.display_name``):

  - ``await take_over(id, staff)``: pause the assistant and tell the patient who joined;
  - ``await send(id, staff, text)``: a line into a conversation you hold (texting takes over
    by itself on the first one); ``await send_template(id, staff)``: WhatsApp's approved template;
  - ``await hand_back(id, staff)``: the assistant answers again (anyone may);
  - ``await state(id, staff, ask_chat_server=True)``: who holds it, the lines and how they fared;
  - ``await serves(id)``: whether this channel can talk to that escalation's patient.

  Each returns an object with ``to_dict()`` (the JSON the API answers) and raises a
  :class:`~bot.dashboard.staff.handoff.errors.HandoffError` for anything staff should be told.
* :func:`live_takeover` ``(sessions, id)``: who holds the case's conversation now (``{"name",
  "username", "since"}``) or None; no bridge needed, any channel.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Optional

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.core.clinic import Clinic
from bot.core.store import chat
from bot.core.store import repository as repo
from bot.core.store.models import AuditKind, ChatLineKind, ChatTakeover, Escalation, StaffChatLine, utcnow
from bot.dashboard.staff import cases
from bot.dashboard.staff.handoff.bridge import BridgeAnswer, BridgeUnavailable
from bot.dashboard.staff.handoff.errors import (
    ChatServerUnavailable, EscalationNotFound, HandoffError, HeldByColleague, NotHolding,
)
from bot.dashboard.staff.handoff.lines import Staff, clean_message, holder_fields, shown_name
from bot.dashboard.staff.handoff.policy import ChannelPolicy, Seen

logger = logging.getLogger(__name__)


async def live_takeover(sessions: sessionmaker, escalation_id: str) -> Optional[dict[str, Any]]:
    """Who from the clinic holds this escalation's conversation now (``name``, ``username``, ``since``), or None."""
    async with sessions() as session:
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            return None
        takeover = await chat.active_takeover(session, escalation.sender_id)
    if takeover is None or takeover.escalation_id != escalation_id:
        return None
    return holder_fields(takeover)


class HandoffService:
    """Take over, write into and hand back a patient's conversation on one channel."""

    def __init__(self, sessions: sessionmaker, policy: ChannelPolicy, clinic: Clinic) -> None:
        self.sessions = sessions
        self.policy = policy
        self.clinic = clinic

    # ---- reading ----------------------------------------------------------------------------------

    async def serves(self, escalation_id: str) -> bool:
        """Whether staff can talk to this escalation's patient on this channel."""
        async with self.sessions() as session:
            escalation = await session.get(Escalation, escalation_id)
        return escalation is not None and self.policy.serves(escalation)

    async def state(self, escalation_id: str, staff: Staff, ask_chat_server: bool = True) -> Any:
        """Who holds the conversation, the lines staff put into it, and (if asked) whether the patient's chat is open.

        Raises:
            EscalationNotFound: no such escalation.
            WrongChannel: a channel that needs its own record (a number) has none for it.
        """
        async with self.sessions() as session:
            escalation, party = await self._load(session, escalation_id, serving=False)
            takeover = await chat.active_takeover(session, escalation.sender_id)
        presence = await self.policy.presence(escalation) if ask_chat_server else None
        if takeover is not None and presence is not None and presence.assistant_back:
            await self._close(takeover, by="assistant")
            takeover = None
        own = takeover if takeover is not None and takeover.escalation_id == escalation_id else None
        async with self.sessions() as session:
            lines = list(await chat.lines_of(session, escalation_id))
            seen = Seen(escalation, party, holder_fields(own) if own else None,
                        own is not None and own.staff_username == staff.username, lines, utcnow())
            return await self.policy.view(session, seen, presence)

    # ---- acting -----------------------------------------------------------------------------------

    async def take_over(self, escalation_id: str, staff: Staff) -> Any:
        """Pause the assistant in the conversation and tell the patient who joined."""
        now = utcnow()
        await self._check_allowed(escalation_id, staff, template=False, now=now)
        try:
            async with self.sessions() as session:
                async with session.begin():
                    escalation, party = await self._load(session, escalation_id)
                    current = await chat.active_takeover(session, escalation.sender_id)
                    if current is not None:
                        raise HeldByColleague(self._held(current, escalation_id, staff))
                    takeover, joined = await self._start(session, escalation, party, staff, now)
        except IntegrityError:
            raise HeldByColleague(self.policy.wording.taken_meanwhile) from None
        answer = await self._confirm(escalation, takeover, joined, staff)
        return await self._result(joined.id, answer)

    async def send(self, escalation_id: str, staff: Staff, text: Any) -> Any:
        """Put a staff message into the conversation (see :attr:`ChannelPolicy.takes_over_on_send`)."""
        return await self._send(escalation_id, staff, clean_message(text), template=False)

    async def send_template(self, escalation_id: str, staff: Staff) -> Any:
        """Send the channel's approved template (WhatsApp, outside its 24-hour window)."""
        return await self._send(escalation_id, staff, self.policy.template_note, template=True)

    async def hand_back(self, escalation_id: str, staff: Staff) -> Any:
        """Resume the assistant, telling the patient. Any staff member may hand back."""
        now = utcnow()
        async with self.sessions() as session:
            async with session.begin():
                escalation, party = await self._load(session, escalation_id)
                takeover = await chat.active_takeover(session, escalation.sender_id)
                if takeover is None or takeover.escalation_id != escalation_id:
                    raise NotHolding(self.policy.wording.nobody_holds)
                line = await self._line(session, escalation, takeover.id, ChatLineKind.left, staff,
                                        self._told(self.policy.wording.left, takeover.staff_name), now)
        answer = await self._call("handback", escalation, line, takeover)
        async with self.sessions() as session:
            async with session.begin():
                await chat.end_takeover(session, takeover.id, by=staff.username, now=utcnow())
                await self._audit(session, AuditKind.chat_handed_back, escalation, staff, party,
                                  {"takeover_id": takeover.id, "line_id": line.id})
        logger.info("escalation %s: handed back by %s", escalation_id, staff.username)
        return await self._result(line.id, answer)

    async def _send(self, escalation_id: str, staff: Staff, body: str, template: bool) -> Any:
        now = utcnow()
        await self._check_allowed(escalation_id, staff, template, now)
        joined: Optional[StaffChatLine] = None
        try:
            async with self.sessions() as session:
                async with session.begin():
                    escalation, party = await self._load(session, escalation_id)
                    takeover = await chat.active_takeover(session, escalation.sender_id)
                    if not _holds(takeover, escalation_id, staff):
                        if takeover is not None or not self.policy.takes_over_on_send:
                            raise self._not_yours(takeover, escalation_id, staff)
                        takeover, joined = await self._start(session, escalation, party, staff, now)
                    line = await self._line(session, escalation, takeover.id, ChatLineKind.message, staff, body, now)
                    await self._audit(session, AuditKind.chat_message_sent, escalation, staff, party,
                                      {"takeover_id": takeover.id, "line_id": line.id, "chars": len(body),
                                       **({"template": True} if template else {})})
        except IntegrityError:
            raise HeldByColleague(self.policy.wording.taken_meanwhile) from None
        if joined is not None:
            await self._confirm(escalation, takeover, joined, staff, also_failed=line)
        answer = await self._call("message", escalation, line, takeover, template=template)
        return await self._result(line.id, answer)

    # ---- the steps --------------------------------------------------------------------------------

    async def _load(self, session: Any, escalation_id: str, serving: bool = True) -> tuple[Escalation, Any]:
        """The escalation and the channel's record; with ``serving``, only one this channel can talk to."""
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            raise EscalationNotFound("No escalation with this id.")
        if serving and not self.policy.serves(escalation):
            raise self.policy.wrong_channel(self.policy.wording.wrong_channel)
        return escalation, await self.policy.party(session, escalation)

    async def _check_allowed(self, escalation_id: str, staff: Staff, template: bool, now: datetime) -> None:
        """Refuse (and audit) a line a channel rule forbids, before anything is stored."""
        async with self.sessions() as session:
            async with session.begin():
                escalation, party = await self._load(session, escalation_id)
                refusal = self.policy.refusal(party, template, now)
                if refusal is None:
                    return
                if self.policy.refused_audit is not None:
                    await self._audit(session, self.policy.refused_audit, escalation, staff, party,
                                      {"reason": refusal.reason})
        raise refusal

    async def _start(self, session: Any, escalation: Escalation, party: Any, staff: Staff,
                     now: datetime) -> tuple[ChatTakeover, StaffChatLine]:
        """Open a takeover with its "has joined" line, audited (inside the caller's transaction)."""
        name = shown_name(staff)
        takeover = await chat.start_takeover(
            session, escalation_id=escalation.id, sender_id=escalation.sender_id, user_id=staff.id,
            username=staff.username, name=name, now=now,
        )
        joined = await self._line(session, escalation, takeover.id, ChatLineKind.joined, staff,
                                  self._told(self.policy.wording.joined, name), now)
        await self._audit(session, AuditKind.chat_taken_over, escalation, staff, party,
                          {"takeover_id": takeover.id, "line_id": joined.id})
        return takeover, joined

    async def _confirm(self, escalation: Escalation, takeover: ChatTakeover, joined: StaffChatLine, staff: Staff,
                       also_failed: Optional[StaffChatLine] = None) -> BridgeAnswer:
        """Ask the server to pause the assistant; if it does not, the takeover closes (and its lines fail)."""
        try:
            answer = await self._call("takeover", escalation, joined, takeover)
        except HandoffError:
            if also_failed is not None:
                await self._fail(also_failed)
            await self._close(takeover, by="system")
            raise
        logger.info("escalation %s: taken over by %s", escalation.id, staff.username)
        await cases.claim(self.sessions, escalation.id, staff)
        return answer

    async def _call(self, operation: str, escalation: Escalation, line: StaffChatLine, takeover: ChatTakeover,
                    template: bool = False) -> BridgeAnswer:
        """Ask the bridge to put a stored line in; on any failure the line is marked failed and staff told."""
        wording = self.policy.wording
        body: dict[str, Any] = {"sender_id": escalation.sender_id, "line_id": line.id}
        if template:
            body["template"] = True
        try:
            answer = await self.policy.bridge.call(operation, body)
        except BridgeUnavailable:
            await self._fail(line)
            raise ChatServerUnavailable(wording.no_answer.format(what=wording.not_done[operation])) from None
        if answer.ok:
            return answer
        await self._fail(line)
        if operation == "handback" and answer.status == 404:
            return answer  # the server no longer has the conversation: nothing is paused there; the takeover closes
        if answer.status == 409 and answer.error == "not_paused":
            await self._close(takeover, by="assistant")  # a new session: the assistant answers again
            raise NotHolding(wording.assistant_back)
        raise self._refusal(answer)

    def _refusal(self, answer: BridgeAnswer) -> HandoffError:
        own = self.policy.bridge_refusal(answer)
        if own is not None:
            return own
        if answer.error in ("unknown_conversation", "unknown_line"):
            return EscalationNotFound(self.policy.wording.gone)
        logger.error("staff bridge refused a call: %s %s", answer.status, answer.error)
        return ChatServerUnavailable(self.policy.wording.refused)

    def _told(self, text: str, name: str) -> str:
        """A notice for the patient, with the staff member's name and the clinic's."""
        return text.format(name=name, clinic=self.clinic.name, phone=self.clinic.phone)

    def _held(self, current: ChatTakeover, escalation_id: str, staff: Staff) -> str:
        wording = self.policy.wording
        if current.escalation_id != escalation_id:
            return wording.held_elsewhere.format(name=current.staff_name)
        if current.staff_username == staff.username:
            return wording.already_yours
        return wording.held_by.format(name=current.staff_name)

    def _not_yours(self, takeover: Optional[ChatTakeover], escalation_id: str, staff: Staff) -> HandoffError:
        """Why staff cannot write in a conversation they do not hold."""
        if takeover is not None and self.policy.takes_over_on_send:
            return HeldByColleague(self._held(takeover, escalation_id, staff))
        if takeover is None or takeover.escalation_id != escalation_id:
            return NotHolding(self.policy.wording.take_over_first)
        return NotHolding(self.policy.wording.only_holder.format(name=takeover.staff_name))

    # ---- the store --------------------------------------------------------------------------------

    async def _line(self, session: Any, escalation: Escalation, takeover_id: int, kind: ChatLineKind, staff: Staff,
                    body: str, now: datetime) -> StaffChatLine:
        return await chat.add_line(
            session, escalation_id=escalation.id, takeover_id=takeover_id, sender_id=escalation.sender_id, kind=kind,
            username=staff.username, name=shown_name(staff), body=body, now=now,
        )

    async def _audit(self, session: Any, kind: AuditKind, escalation: Escalation, staff: Staff, party: Any,
                     detail: dict[str, Any]) -> None:
        await repo.add_audit(session, kind, escalation_id=escalation.id, sender_id=escalation.sender_id,
                             actor=staff.username, detail={**detail, **self.policy.audit_extra(party)})

    async def _fail(self, line: StaffChatLine) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await chat.mark_failed(session, line.id, utcnow())

    async def _close(self, takeover: ChatTakeover, by: str) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await chat.end_takeover(session, takeover.id, by=by, now=utcnow())

    async def _result(self, line_id: int, answer: BridgeAnswer) -> Any:
        async with self.sessions() as session:
            line = await chat.get_line(session, line_id)
        return self.policy.result(line, answer)


def _holds(takeover: Optional[ChatTakeover], escalation_id: str, staff: Staff) -> bool:
    return (takeover is not None and takeover.escalation_id == escalation_id
            and takeover.staff_username == staff.username)
