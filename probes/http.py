"""HTTP probe: one GET over a stream already connected (and, for https, already TLS) through the vantage.

Driven with h11 (the HTTP/1.1 engine under httpx) directly on our own streams, so the request goes to the
address under test with Host = the name, no pool can reuse a session across names, and every byte read is
bounded: headers by h11's event-size limit, the body by `body_limit` both before and after decompression,
time by one deadline over the whole exchange.

The body is never kept: it is matched against block-page fingerprints while in memory, then only status,
selected headers, a cleaned title, lengths and a sha256 of the prefix leave this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import time
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import AnyStr

import h11

from probes import base

USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
KEPT_HEADERS = frozenset(
    {"server", "location", "content-type", "content-length", "content-encoding", "via", "x-powered-by", "refresh"}
)
HEADER_LIMIT = 64 * 1024
TITLE_CHARS = 160

# (body_text, all_headers, location) -> (block-page fingerprint ids, false-positive ids)
PageMatcher = Callable[[str, Sequence[tuple[str, str]], str], tuple[tuple[str, ...], tuple[str, ...]]]

_TITLE_OPEN = re.compile(r"<title", re.IGNORECASE)
_TITLE_CLOSE = re.compile(r"</title", re.IGNORECASE)
_TITLE_OPEN_B = re.compile(rb"<title", re.IGNORECASE)
_TITLE_CLOSE_B = re.compile(rb"</title", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_CT_CHARSET = re.compile(r"charset=[\"']?([A-Za-z0-9_\-]+)", re.IGNORECASE)


async def get(
    ctx: base.ProbeContext,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host_header: str,
    target: str,
    matcher: PageMatcher | None = None,
    read_body: bool = True,
) -> base.HttpObservation:
    """GET `target`; with `read_body` False, stop at the headers: not one byte of content is read."""
    start = time.monotonic()
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEADER_LIMIT)
    sent = False
    response: h11.Response | None = None
    body = _BoundedBody(ctx.body_limit)
    try:
        # built inside the try: a target h11 cannot send is a failed request (and the stream is closed)
        request = h11.Request(
            method="GET",
            target=target.encode("ascii", "strict"),
            headers=[
                ("Host", host_header),
                ("User-Agent", USER_AGENT),
                ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
                ("Accept-Encoding", "gzip, deflate"),
                ("Connection", "close"),
            ],
        )
        async with asyncio.timeout(ctx.timeouts.http):
            writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            sent = True
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(16384)
                    if not data and response is None:
                        return _failed(base.Failure.EOF, "connection closed before a response", start, sent)
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    response = event
                    if not read_body:
                        break
                    body.set_encoding(_header(event.headers, "content-encoding"))
                elif isinstance(event, h11.Data):
                    if body.feed(bytes(event.data)):
                        break
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)) or event is h11.PAUSED:
                    break
    except TimeoutError:
        if response is None:
            return _failed(base.Failure.GENERIC_TIMEOUT, f"no response within {ctx.timeouts.http:g}s", start, sent)
        body.truncated = True  # a slow body: judge on what came in time
    except h11.RemoteProtocolError as exc:
        if response is None:
            return _failed(base.Failure.HTTP_PROTOCOL_ERROR, f"invalid HTTP response: {protocol_error_text(exc)}", start,
                           sent)
    except (OSError, EOFError) as exc:
        if response is None:
            return _failed(base.os_error_failure(exc), str(exc) or type(exc).__name__, start, sent)
        body.truncated = True
    except UnicodeEncodeError as exc:
        return _failed(base.Failure.HTTP_REQUEST_FAILED, f"request target not ASCII: {exc}", start, False)
    except h11.LocalProtocolError as exc:  # e.g. a space or a control character in the target
        return _failed(base.Failure.HTTP_REQUEST_FAILED, f"request not sendable: {exc}", start, False)
    finally:
        writer.close()
    assert response is not None
    return _observe(response, body if read_body else None, start, matcher)


_QUOTED_BYTES = re.compile(r"""[: ]*\b(?:bytearray\()?b['"].*""", re.DOTALL)


def protocol_error_text(exc: h11.ProtocolError) -> str:
    """h11's message without the server's bytes it quotes (`illegal status line: bytearray(b'...')`): that
    line can be up to the header limit of anything, e.g. a bare page sent without a status line (HTTP/0.9
    style, or a block page injected as is), and no response body is ever stored."""
    text, n = _QUOTED_BYTES.subn("", str(exc))
    return f"{text} (the offending bytes are not kept)" if n else text


def _failed(failure: base.Failure, error: str, start: float, sent: bool) -> base.HttpObservation:
    return base.HttpObservation(failure=failure, error=error, elapsed_ms=_ms(start), interrupted_after_request=sent)


def _header(headers: Sequence[tuple[bytes, bytes]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name.encode():
            return v.decode("latin-1")
    return ""


def _observe(
    response: h11.Response, body: _BoundedBody | None, start: float, matcher: PageMatcher | None
) -> base.HttpObservation:
    """What is kept of a response: status, selected headers, and of the body (when read) a cleaned title,
    lengths and a hash. Without a body (a sensitive entry), header and redirect fingerprints still apply."""
    all_headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers]
    location = _header(response.headers, "location")
    content = bytes(body.decoded) if body is not None else b""
    text = decode_text(content, _header(response.headers, "content-type")) if body is not None else ""
    fingerprints: tuple[str, ...] = ()
    false_positives: tuple[str, ...] = ()
    if matcher is not None:
        fingerprints, false_positives = matcher(text, all_headers, location)
    declared = _header(response.headers, "content-length")
    head = base.HttpObservation(
        failure=None,
        status=response.status_code,
        reason=response.reason.decode("latin-1", "replace")[:80],
        headers=tuple((k, v[:256]) for k, v in all_headers if k in KEPT_HEADERS),
        location=location[:2048],
        declared_length=int(declared) if declared.isdigit() else None,
        fingerprints=fingerprints,
        elapsed_ms=_ms(start),
        body_read=body is not None,
    )
    if body is None:
        return head
    return replace(
        head,
        title=extract_title(content, text),
        body_length=len(content),
        truncated=body.truncated,
        body_sha256=hashlib.sha256(content).hexdigest(),
        false_positives=false_positives,
        error=body.error,
    )


class _BoundedBody:
    """Collects at most `limit` bytes of body, decompressing gzip/deflate with the output bounded too."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.raw_read = 0
        self.decoded = bytearray()
        self.truncated = False
        self.error = ""
        self._inflate: zlib._Decompress | None = None
        self._encoding = ""

    def set_encoding(self, encoding: str) -> None:
        self._encoding = encoding.strip().lower()
        if self._encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding == "deflate":
            self._inflate = zlib.decompressobj()
        elif self._encoding not in ("", "identity"):
            self.error = f"content-encoding {self._encoding!r} not decoded"

    def feed(self, chunk: bytes) -> bool:
        """Add a chunk; True when the limit is reached and reading should stop."""
        self.raw_read += len(chunk)
        room = self.limit - len(self.decoded)
        if self._inflate is not None:
            try:
                # max_length bounds the output of a decompression bomb
                self.decoded += self._inflate.decompress(self._inflate.unconsumed_tail + chunk, room)
            except zlib.error as exc:
                self.error = f"bad {self._encoding} body: {exc}"
                self._inflate = None
        else:
            self.decoded += chunk[:room]
        if len(self.decoded) >= self.limit or self.raw_read >= self.limit * 4:
            self.truncated = True
            return True
        return False


def decode_text(content: bytes, content_type: str) -> str:
    charset = ""
    m = _CT_CHARSET.search(content_type)
    if m:
        charset = m.group(1)
    else:
        m2 = _META_CHARSET.search(content[:4096])
        if m2:
            charset = m2.group(1).decode("ascii", "replace")
    if charset:
        try:
            return content.decode(charset, "replace")
        except (LookupError, UnicodeError):
            # the server names the charset: an unknown one, or a codec that cannot decode with "replace"
            # ("undefined" always raises, "idna" and "punycode" refuse errors="replace")
            pass
    return content.decode("utf-8", "replace")


def extract_title(content: bytes, text: str) -> str:
    if _title_span(content[:65536], _TITLE_OPEN_B, _TITLE_CLOSE_B) is None:
        return ""
    span = _title_span(text, _TITLE_OPEN, _TITLE_CLOSE)
    if span is None:
        return ""
    return clean_text(text[span[0] : span[1]])


def _title_span(s: AnyStr, opening: re.Pattern[AnyStr], closing: re.Pattern[AnyStr]) -> tuple[int, int] | None:
    """Where the first `<title ...>` element's text is, like `<title[^>]*>(.*?)</title` but in linear time:
    that pattern backtracks quadratically on a page of many `<title>` without a closing tag (64 KiB of
    them took 3 s, freezing the event loop, so every other probe in flight timed out). Only the first
    `<title` matters: if it has no `>` or no `</title` after it, no later one has either."""
    m = opening.search(s)
    if m is None:
        return None
    gt = s.find(">", m.end()) if isinstance(s, str) else s.find(b">", m.end())
    if gt < 0:
        return None
    end = closing.search(s, gt + 1)
    if end is None:
        return None
    return gt + 1, end.start()


def clean_text(raw: str) -> str:
    """Unescape, NFC-normalise (Vietnamese has composed and decomposed forms), drop controls, fold spaces."""
    title = unicodedata.normalize("NFC", html.unescape(raw))
    title = "".join(ch if ch.isprintable() else " " for ch in title)
    return " ".join(title.split())[:TITLE_CHARS]


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)
