"""Case work on escalations: the staff queue, one case, and what staff do with it.

One import for the web handlers, the API and the tests; the work is split along its seams:

- :mod:`bot.dashboard.staff.case_query`: the queue's filters, parsed from query parameters
  (:class:`CaseFilter`, :func:`check_search`, :func:`page_params`);
- :mod:`bot.dashboard.staff.case_views`: what staff see (:class:`CaseSummary`, :class:`CaseDetail`,
  :class:`CasePage`, notes, audit entries, colleagues) and the allowed status changes;
- :mod:`bot.dashboard.staff.case_store`: the queries (:func:`list_cases`, :func:`count_by_status`,
  :func:`get_case`, search, the queue order);
- :mod:`bot.dashboard.staff.case_commands`: the audited changes (:func:`assign`, :func:`set_status`,
  :func:`claim`, :func:`add_note`, :func:`record_outcome`, :func:`audit_export`);
- :mod:`bot.dashboard.staff.case_errors`: what case work reports to staff, and who acts.
"""

from __future__ import annotations

from bot.core.store.models import PRIORITY_RANK
from bot.dashboard.staff.case_commands import MAX_ATTEMPTS, MAX_ID, MAX_NOTE_CHARS, _change, add_note, assign, audit_export, claim, record_outcome, set_status
from bot.dashboard.staff.case_errors import Actor, CaseChanged, CaseError, CaseNotFound, InvalidInput, InvalidTransition
from bot.dashboard.staff.case_query import DEFAULT_PER_PAGE, MAX_CHANNEL_CHARS, MAX_PER_PAGE, MAX_SEARCH_CHARS, CaseFilter, check_search, page_params
from bot.dashboard.staff.case_store import MAX_AUDIT_EVENTS, colleagues, count_by_status, get_case, list_cases, matches, new_id, queue_order, sender_ids, valid_id
from bot.dashboard.staff.case_views import TRANSITIONS, AuditEntry, CaseDetail, CasePage, CaseSummary, Colleague, NoteView

__all__ = [
    "DEFAULT_PER_PAGE", "MAX_ATTEMPTS", "MAX_AUDIT_EVENTS", "MAX_CHANNEL_CHARS", "MAX_ID", "MAX_NOTE_CHARS",
    "MAX_PER_PAGE", "MAX_SEARCH_CHARS", "PRIORITY_RANK", "TRANSITIONS",
    "Actor", "AuditEntry", "CaseChanged", "CaseDetail", "CaseError", "CaseFilter", "CaseNotFound", "CasePage",
    "CaseSummary", "Colleague", "InvalidInput", "InvalidTransition", "NoteView",
    "_change", "add_note", "assign", "audit_export", "check_search", "claim", "colleagues", "count_by_status",
    "get_case", "list_cases", "matches", "new_id", "page_params", "queue_order", "record_outcome", "sender_ids",
    "set_status", "valid_id",
]
