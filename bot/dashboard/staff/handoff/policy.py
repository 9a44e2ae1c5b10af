"""What differs between channels in a handoff: the :class:`ChannelPolicy` a channel supplies.

:class:`~bot.dashboard.staff.handoff.service.HandoffService` does the work the same way on
every channel (store and audit first, then the bridge; one holder at a time; hand back by
anyone). A policy says only what is the channel's own: which conversations it serves, the
record it needs besides the escalation (an SMS contact), the rules that refuse a line
before anything is stored (opt-out, WhatsApp's window), whether the patient's chat is open
(presence), what the patient is told, and how the state and a sent line read in the API.
What staff are told is data (:class:`Wording`), one instance per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Optional, Protocol

from bot.core.store.models import AuditKind, Escalation, StaffChatLine
from bot.dashboard.staff.handoff.bridge import Bridge, BridgeAnswer
from bot.dashboard.staff.handoff.errors import HandoffError, Refused, WrongChannel


@dataclass(frozen=True)
class Wording:
    """What the patient is told when staff join and leave, and what staff are told when the service refuses.

    ``{name}`` is the shown name of the staff member (joining) or the holder; ``joined`` and ``left``
    also take ``{clinic}`` and ``{phone}``; ``no_answer`` takes ``{what}``, one of ``not_done``.
    """

    joined: str
    left: str
    wrong_channel: str
    already_yours: str
    held_by: str
    held_elsewhere: str
    taken_meanwhile: str
    nobody_holds: str
    assistant_back: str
    no_answer: str
    gone: str
    refused: str
    not_done: Mapping[str, str] = field(default_factory=dict)
    #: Used only where a line needs a takeover first (the web chat); texting takes over by itself.
    take_over_first: str = ""
    only_holder: str = ""


@dataclass(frozen=True)
class Presence:
    """Whether the patient's chat is open, as the assistant's server sees it now."""

    connected: bool
    paused: bool
    #: The server has the assistant answering again (a new session after a long silence).
    assistant_back: bool


@dataclass(frozen=True)
class Seen:
    """What the store holds about an escalation's handoff, for a policy to show."""

    escalation: Escalation
    #: The channel's own record (:meth:`ChannelPolicy.party`).
    party: Any
    holder: Optional[dict[str, Any]]
    mine: bool
    lines: list[StaffChatLine]
    now: datetime


class ChannelPolicy(Protocol):
    """One channel's part of a handoff."""

    bridge: Bridge
    wording: Wording
    #: The error raised for a conversation of another channel.
    wrong_channel: type[WrongChannel]
    #: Whether a line sent while nobody holds the conversation takes it over first (texting) or is refused (web chat).
    takes_over_on_send: bool
    #: The audit kind of a line a channel rule refused (None: the channel has no such rule worth recording).
    refused_audit: Optional[AuditKind]
    #: What the dashboard shows for a template line (empty: the channel has no templates).
    template_note: str

    def serves(self, escalation: Escalation) -> bool:
        """Whether staff can talk to this escalation's patient on this channel."""

    async def party(self, session: Any, escalation: Escalation) -> Any:
        """The channel's record beside the escalation (or None); may raise :class:`WrongChannel`."""

    def refusal(self, party: Any, template: bool, now: datetime) -> Optional[Refused]:
        """A channel rule that forbids sending now, checked (and audited) before anything is stored."""

    def audit_extra(self, party: Any) -> dict[str, Any]:
        """What the channel adds to the handoff's audit details (ids and words only, never text)."""

    def bridge_refusal(self, answer: BridgeAnswer) -> Optional[HandoffError]:
        """The channel's own reading of a refusal from its bridge (None: the service's general one)."""

    async def presence(self, escalation: Escalation) -> Optional[Presence]:
        """Whether the patient's chat is open now (None: not known, or not a thing on this channel)."""

    async def view(self, session: Any, seen: Seen, presence: Optional[Presence]) -> Any:
        """The state the dashboard shows (an object with ``to_dict()``)."""

    def result(self, line: StaffChatLine, answer: BridgeAnswer) -> Any:
        """What a request that put ``line`` into the conversation answers (an object with ``to_dict()``)."""
