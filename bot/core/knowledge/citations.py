"""What a patient sees beside a curated answer: its sources, version and review date.

:func:`answer_citation` turns an answer's ``metadata.kb`` (as Rasa hands it to an output
channel) into ``{"title", "version", "reviewed", "sources": [{"name", "url"}]}``, each
source named from the catalogue (``bot/core/knowledge/sources.yml``). A source's ``url``
is given only when it is an https URL: the catalogue is curated, but a link in the
patient's chat must never be ``http:``, ``javascript:`` or anything else, so any other
source is named without a link.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from bot.core.knowledge.catalog import Source, load_sources

#: At most this many sources are listed beside one answer.
MAX_SOURCES = 12


def https_url(url: Any) -> str:
    """``url`` if it is an absolute https URL with a host, else ""."""
    if not isinstance(url, str) or url != url.strip() or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme == "https" and parts.hostname else ""


def source_name(source: Source) -> str:
    """The name patients see: the catalogue's ``name``, else the citation's first sentence."""
    if source.name:
        return source.name
    return source.citation.split(". ", 1)[0].strip() or source.id


@lru_cache(maxsize=1)
def catalogue() -> Mapping[str, Source]:
    """The source catalogue, read once per process."""
    return load_sources()


def answer_citation(kb: Any, sources: Optional[Mapping[str, Source]] = None) -> Optional[dict[str, Any]]:
    """The sources line of an answer with ``metadata.kb`` ``kb``; None when it names no known source."""
    if not isinstance(kb, Mapping):
        return None
    sources = catalogue() if sources is None else sources
    ids = kb.get("sources")
    listed = []
    for source_id in ids if isinstance(ids, (list, tuple)) else ():
        source = sources.get(source_id) if isinstance(source_id, str) else None
        if source is None:
            continue
        entry = {"name": source_name(source)}
        url = https_url(source.url)
        if url:
            entry["url"] = url
        listed.append(entry)
    if not listed:
        return None
    version = kb.get("version")
    reviewed = kb.get("reviewed")
    return {
        "title": str(kb.get("title") or ""),
        "version": version if isinstance(version, int) and not isinstance(version, bool) else None,
        "reviewed": str(reviewed) if reviewed else None,
        "sources": listed[:MAX_SOURCES],
    }
