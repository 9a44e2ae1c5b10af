"""Malformed request bodies, and a raw HTTP client that sends them exactly as written.

Shared by the fuzz tests of the web app (``tests/web/test_fuzz_bodies.py``) and of the
Rasa server's routes (``tests/channels/test_fuzz_routes.py``): a fixed list of the
bodies issue 20 named (truncated multipart, ``charset=utf-16``, bogus gzip, invalid
JSON, wrong content types, ...) and hypothesis strategies for everything around them.
A client library would fix up or refuse some of these, so requests go out through
``http.client`` with the headers and bytes given.
"""

from __future__ import annotations

import gzip
import http.client
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

from hypothesis import strategies as st

BOUNDARY = "XyZfuzz"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _part(name: Optional[str], value: bytes, filename: str = "") -> bytes:
    disposition = "form-data" + (f'; name="{name}"' if name is not None else "") + (
        f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


#: (what, headers, body): each is a body some client may send; none may cause a 5xx.
MALFORMED: list[tuple[str, dict[str, str], bytes]] = [
    ("truncated multipart", {"Content-Type": MULTIPART},
     f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello'.encode()),
    ("multipart cut inside the headers", {"Content-Type": MULTIPART}, f"--{BOUNDARY}\r\nContent-Disp".encode()),
    ("multipart without a boundary", {"Content-Type": "multipart/form-data"}, b"text=hello"),
    ("multipart with another boundary", {"Content-Type": MULTIPART}, _part("text", b"x").replace(BOUNDARY.encode(), b"other")),
    ("multipart part without a name", {"Content-Type": MULTIPART}, _part(None, b"x") + f"--{BOUNDARY}--\r\n".encode()),
    ("multipart file upload", {"Content-Type": MULTIPART}, _part("text", b"x", "a.txt") + f"--{BOUNDARY}--\r\n".encode()),
    ("multipart in utf-16", {"Content-Type": MULTIPART + "; charset=utf-16"},
     _part("text", "hi".encode("utf-16")) + f"--{BOUNDARY}--\r\n".encode()),
    ("form in utf-16", {"Content-Type": FORM + "; charset=utf-16"}, "text=hello&status=new".encode("utf-16")),
    ("JSON in utf-16", {"Content-Type": JSON + "; charset=utf-16"}, '{"text": "hello"}'.encode("utf-16")),
    ("JSON declared utf-8, sent utf-16", {"Content-Type": JSON + "; charset=utf-8"}, '{"text": "hi"}'.encode("utf-16")),
    ("unknown charset", {"Content-Type": JSON + "; charset=klingon"}, b'{"text": "hello"}'),
    ("form with an unknown charset", {"Content-Type": FORM + "; charset=x-unknown"}, b"text=hello"),
    ("bogus gzip JSON", {"Content-Type": JSON, "Content-Encoding": "gzip"}, b"this is not gzip"),
    ("bogus gzip form", {"Content-Type": FORM, "Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00broken"),
    ("bogus gzip multipart", {"Content-Type": MULTIPART, "Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00broken"),
    ("bogus deflate", {"Content-Type": JSON, "Content-Encoding": "deflate"}, b"nope"),
    ("bogus brotli", {"Content-Type": JSON, "Content-Encoding": "br"}, b"nope"),
    ("unknown encoding", {"Content-Type": JSON, "Content-Encoding": "klingon"}, b'{"text": "hello"}'),
    ("gzip of invalid JSON", {"Content-Type": JSON, "Content-Encoding": "gzip"}, gzip.compress(b'{"text": ')),
    ("invalid JSON", {"Content-Type": JSON}, b'{"text": '),
    ("JSON with invalid UTF-8", {"Content-Type": JSON}, b'{"text": "\xff\xfe\xfd"}'),
    ("JSON nested too deep", {"Content-Type": JSON}, b"[" * 40000),
    ("JSON array", {"Content-Type": JSON}, b"[1, 2, 3]"),
    ("JSON null", {"Content-Type": JSON}, b"null"),
    ("JSON string", {"Content-Type": JSON}, b'"hello"'),
    ("JSON with wrong types", {"Content-Type": JSON},
     b'{"text": 5, "status": [], "assignee": {}, "version": "x", "sender": 7, "message": {}, "line_id": true, '
     b'"sender_id": [], "role": null, "username": 1, "metadata": "x", "outcome": 9, "q": {}, "template": "yes"}'),
    ("JSON with huge numbers", {"Content-Type": JSON},
     b'{"version": 1e999, "line_id": 99999999999999999999999999, "user_id": -1, "attempts": 1e400}'),
    ("empty JSON", {"Content-Type": JSON}, b""),
    ("form with invalid UTF-8", {"Content-Type": FORM}, b"text=\xff\xfe&csrf_token=\xff&status=\xc3"),
    ("form with percent-encoded invalid UTF-8", {"Content-Type": FORM}, b"text=%ff%fe&status=%c3&version=%00"),
    ("form with wrong types", {"Content-Type": FORM}, b"version=x&assignee=-1&status=&attempts=1e999&user_id=abc"),
    ("plain text", {"Content-Type": "text/plain"}, b"hello"),
    ("plain text in utf-16", {"Content-Type": "text/plain; charset=utf-16"}, "hello".encode("utf-16")),
    ("XML", {"Content-Type": "application/xml"}, b"<text>hello</text>"),
    ("image", {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n\x00\x00"),
    ("no content type", {}, b"\x00\x01\x02binary"),
    ("content type without a subtype", {"Content-Type": "application"}, b"{}"),
    ("content type with junk parameters", {"Content-Type": 'application/json; ;;charset="utf-8'}, b"{}"),
    ("larger than allowed", {"Content-Type": JSON}, b'{"text": "' + b"a" * 70000 + b'"}'),
]

CONTENT_TYPES = [FORM, MULTIPART, "multipart/form-data", JSON, "application/problem+json", "text/plain", "application/xml",
                 "application/octet-stream", "", "text/html", "application/json; charset=utf-16", FORM + "; charset=latin-1"]
ENCODINGS = ["", "", "", "gzip", "deflate", "br", "identity", "gzip, gzip", "x-klingon"]
FIELDS = ["text", "csrf_token", "status", "assignee", "version", "note", "outcome", "attempts", "username",
          "display_name", "role", "q", "sender", "message", "metadata", "sender_id", "line_id", "template",
          "current_password", "new_password", "new_password_again", "password", "next", "Body", "From"]

_values = st.one_of(st.text(max_size=40), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False))
json_values = st.recursive(_values, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4), max_leaves=12)


@st.composite
def bodies(draw) -> tuple[dict[str, str], bytes]:
    """Headers and body: JSON, forms, multipart (maybe cut short), or raw bytes, under any declared type."""
    kind = draw(st.sampled_from(["json", "form", "multipart", "bytes"]))
    if kind == "json":
        raw = json.dumps(draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | json_values)).encode()
    elif kind == "form":
        fields = draw(st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=30), max_size=6))
        raw = urllib.parse.urlencode(fields).encode()
    elif kind == "multipart":
        fields = draw(st.dictionaries(st.sampled_from(FIELDS), st.binary(max_size=30), max_size=4))
        raw = b"".join(_part(name, value) for name, value in fields.items()) + f"--{BOUNDARY}--\r\n".encode()
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    else:
        raw = draw(st.binary(max_size=300))
    if draw(st.booleans()) and draw(st.booleans()):
        raw = gzip.compress(raw)
    headers = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["Content-Type"] = content_type
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding:
        headers["Content-Encoding"] = encoding
    return headers, raw


@dataclass
class Tally:
    """What a fuzz run sent and what came back."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    def record(self, status: int, what: str) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500:
            self.server_errors.append(f"{status} {what}")

    def summary(self, name: str) -> str:
        return (f"{name}: {self.requests} requests, {len(self.server_errors)} answers >= 500; "
                f"statuses {dict(sorted(self.statuses.items()))}")


def send(host: str, port: int, method: str, path: str, headers: dict[str, str], body: bytes,
         timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """One request exactly as given (Content-Length is the body's); the status, headers and body."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body)), "Connection": "close"}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()
