"""HTTP probe: one GET over streams we open to loopback servers; every byte read is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import time
import unicodedata
import zlib
from collections.abc import Sequence

import pytest

from auditor.lab.servers import (
    FixedPageServer,
    Middlebox,
    MiddleboxPolicy,
    http_response,
    read_request_head,
    reset,
)
from probes import base, http
from probes.dialers import SocketDialer, Socks5Dialer
from tests.loopback_servers import LOOPBACK, Handler, TcpServer, read_until_eof, running

FAST = base.Timeouts(dns=1.0, connect=1.0, tls=1.0, http=1.0)
SHORT = base.Timeouts(dns=0.3, connect=0.3, tls=0.3, http=0.3)
LIMIT = 64 * 1024
HOST = "tintuc.vn"
LAB_WEB = "45.76.0.2"


def ctx(timeouts: base.Timeouts = FAST, body_limit: int = LIMIT) -> base.ProbeContext:
    dialer = SocketDialer(loopback_only=True)
    return base.ProbeContext(dialer=dialer, timeouts=timeouts, body_limit=body_limit)


async def get_from(port: int, probe_ctx: base.ProbeContext | None = None, target: str = "/",
                   matcher: http.PageMatcher | None = None) -> base.HttpObservation:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    obs = await http.get(probe_ctx or ctx(), reader, writer, HOST, target, matcher)
    assert writer.is_closing(), "the probe closes its stream"
    with contextlib.suppress(OSError):  # wait_closed re-raises a reset the probe already recorded
        await writer.wait_closed()
    return obs


def fetch(response: bytes, probe_ctx: base.ProbeContext | None = None, target: str = "/",
          matcher: http.PageMatcher | None = None) -> base.HttpObservation:
    async def main() -> base.HttpObservation:
        async with running(FixedPageServer(response)) as server:
            return await get_from(server.port, probe_ctx, target, matcher)

    return asyncio.run(main())


def fetch_with(
    handler: Handler, probe_ctx: base.ProbeContext | None = None, target: str = "/"
) -> base.HttpObservation:
    async def main() -> base.HttpObservation:
        async with TcpServer(handler) as server:
            return await get_from(server.port, probe_ctx, target)

    return asyncio.run(main())


def page(title: str, extra: str = "") -> bytes:
    return f"<html><head><title>{title}</title></head><body><p>{extra}</p></body></html>".encode()


# --- pages ------------------------------------------------------------------------------------------


def test_ok_page_with_a_decomposed_vietnamese_title() -> None:
    title = "Tin tức Việt Nam hôm nay"
    decomposed = unicodedata.normalize("NFD", title)
    assert decomposed != title
    body = page(decomposed)
    obs = fetch(http_response(200, "OK", body))
    assert obs.failure is None
    assert obs.status == 200 and obs.reason == "OK"
    assert obs.title == title  # NFC
    assert unicodedata.is_normalized("NFC", obs.title)
    assert obs.declared_length == len(body) == obs.body_length
    assert obs.body_sha256 == hashlib.sha256(body).hexdigest()
    assert obs.truncated is False
    assert obs.interrupted_after_request is False
    assert obs.error == ""


def test_request_carries_the_name_and_path() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request_head(reader))
        writer.write(http_response(200, "OK", page("x")))
        await writer.drain()

    obs = fetch_with(handler, target="/tin-t%E1%BB%A9c?id=1")
    assert obs.failure is None
    head = heads[0].decode("latin-1")
    assert head.startswith("GET /tin-t%E1%BB%A9c?id=1 HTTP/1.1\r\n")
    assert f"\r\nHost: {HOST}\r\n" in head
    assert "Accept-Encoding: gzip, deflate" in head
    assert "Connection: close" in head


def test_title_is_unescaped_cleaned_and_bounded() -> None:
    raw = "  Tin &amp; b\u00e0i\n\tvi\u1ebft \x07 " + "x" * 300
    obs = fetch(http_response(200, "OK", page(raw)))
    assert obs.title.startswith("Tin & bài viết x")
    assert len(obs.title) == http.TITLE_CHARS
    assert "\x07" not in obs.title and "\n" not in obs.title


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_body_is_decoded(encoding: str) -> None:
    body = page("Trang bị chặn", "nội dung " * 200)
    compressed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    obs = fetch(http_response(200, "OK", compressed, {"Content-Encoding": encoding}))
    assert obs.failure is None
    assert obs.title == "Trang bị chặn"
    assert obs.body_length == len(body)
    assert obs.body_sha256 == hashlib.sha256(body).hexdigest()  # of the decoded bytes
    assert obs.declared_length == len(compressed)
    assert ("content-encoding", encoding) in obs.headers
    assert obs.error == ""


def test_unknown_content_encoding_is_noted_not_decoded() -> None:
    obs = fetch(http_response(200, "OK", b"\x00\x01br-bytes", {"Content-Encoding": "br"}))
    assert obs.failure is None
    assert obs.status == 200
    assert "br" in obs.error


def test_corrupt_gzip_body_is_noted() -> None:
    corrupt = b"\x1f\x8b\x08\x00garbage-not-deflate"
    obs = fetch(http_response(200, "OK", corrupt, {"Content-Encoding": "gzip"}))
    assert obs.failure is None
    assert obs.status == 200
    assert obs.error.startswith("bad gzip body")


def test_large_body_is_truncated_at_the_limit_quickly() -> None:
    body = page("Trang lớn") + b"<p>" + b"x" * (5 * 1024 * 1024) + b"</p>"
    start = time.monotonic()
    obs = fetch(http_response(200, "OK", body))
    assert time.monotonic() - start < 1.0
    assert obs.failure is None
    assert obs.truncated is True
    assert obs.body_length == LIMIT
    assert obs.declared_length == len(body)
    assert obs.body_sha256 == hashlib.sha256(body[:LIMIT]).hexdigest()
    assert obs.title == "Trang lớn"


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [z.compress(page("Bom"))]
    zeros = bytes(1024 * 1024)
    parts += [z.compress(zeros) for _ in range(50)]  # 50 MB of zeros, about 50 KB compressed
    parts.append(z.flush())
    return b"".join(parts)


def test_gzip_bomb_output_stays_within_the_limit(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 200 * 1024
    start = time.monotonic()
    obs = fetch(http_response(200, "OK", gzip_bomb, {"Content-Encoding": "gzip"}))
    assert time.monotonic() - start < 1.0
    assert obs.failure is None
    assert obs.truncated is True
    assert 0 < obs.body_length <= LIMIT
    assert obs.title == "Bom"


def test_small_limit_on_a_gzip_body(gzip_bomb: bytes) -> None:
    obs = fetch(http_response(200, "OK", gzip_bomb, {"Content-Encoding": "gzip"}), ctx(body_limit=1000))
    assert obs.truncated is True
    assert obs.body_length <= 1000


def test_redirect_with_location() -> None:
    where = "http://canhbao.gov.vn/blocked?url=tintuc.vn"
    obs = fetch(http_response(302, "Found", b"", {"Location": where}))
    assert obs.failure is None
    assert obs.status == 302 and obs.reason == "Found"
    assert obs.location == where
    assert ("location", where) in obs.headers
    assert obs.body_length == 0 and obs.declared_length == 0


def test_chunked_body() -> None:
    body = page("Từng khúc")
    pieces = [body[i : i + 10] for i in range(0, len(body), 10)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    obs = fetch(raw + chunks + b"0\r\n\r\n")
    assert obs.failure is None
    assert obs.title == "Từng khúc"
    assert obs.body_length == len(body)
    assert obs.declared_length is None


def test_body_delimited_by_close() -> None:
    body = page("HTTP/1.0")
    obs = fetch(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + body)
    assert obs.failure is None
    assert obs.body_length == len(body)
    assert obs.title == "HTTP/1.0"


# --- charsets ---------------------------------------------------------------------------------------


# windows-1258 writes Vietnamese tones as combining marks: "Việt" is V i ê (0xEA) + COMBINING DOT BELOW
# (0xF2) t, so the decoded title is decomposed until the probe normalises it


def test_windows_1258_title_from_the_content_type() -> None:
    title = "Tin tức Việt Nam"
    raw = "Tin t\u01b0\u0301c Vi\u00ea\u0323t Nam".encode("cp1258")  # ư + acute, ê + dot below
    body = b"<html><head><title>" + raw + b"</title></head></html>"
    obs = fetch(http_response(200, "OK", body, {"Content-Type": "text/html; charset=windows-1258"}))
    assert obs.failure is None
    assert obs.title == title


def test_windows_1258_title_from_a_meta_tag() -> None:
    raw = "Vi\u00ea\u0323t Nam".encode("cp1258")
    body = b'<html><head><meta charset="windows-1258"><title>' + raw + b"</title></head></html>"
    obs = fetch(http_response(200, "OK", body, {"Content-Type": "text/html"}))
    assert obs.title == "Việt Nam"


def test_unknown_charset_falls_back_to_utf8() -> None:
    body = page("Tiếng Việt")
    obs = fetch(http_response(200, "OK", body, {"Content-Type": "text/html; charset=x-no-such-charset"}))
    assert obs.title == "Tiếng Việt"


# --- matcher and headers ----------------------------------------------------------------------------


def test_matcher_sees_the_decoded_text_and_all_headers() -> None:
    calls: list[tuple[str, list[tuple[str, str]], str]] = []

    def matcher(
        text: str, headers: Sequence[tuple[str, str]], location: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        calls.append((text, list(headers), location))
        found = ("vn-mic-blockpage",) if "Trang web này đã bị chặn" in text else ()
        return found, ("fp-cdn-error",)

    body = page("Cảnh báo", "Trang web này đã bị chặn")
    response = http_response(200, "OK", body, {"Set-Cookie": "sid=abc", "Server": "BlockPage/1.0"})
    obs = fetch(response, matcher=matcher)
    assert obs.fingerprints == ("vn-mic-blockpage",)
    assert obs.false_positives == ("fp-cdn-error",)
    assert len(calls) == 1
    text, headers, location = calls[0]
    assert "Trang web này đã bị chặn" in text
    assert ("set-cookie", "sid=abc") in headers  # the matcher sees every header, lower-cased names
    assert location == ""


def test_only_selected_headers_are_kept() -> None:
    headers = {
        "Set-Cookie": "session=secret-token",
        "Server": "nginx",
        "Via": "1.1 filter.isp.vn",
        "X-Powered-By": "PHP",
        "X-Request-Id": "abc123",
        "Refresh": "0; url=http://canhbao.vn/",
    }
    obs = fetch(http_response(200, "OK", page("x"), headers))
    kept = dict(obs.headers)
    assert "set-cookie" not in kept and "x-request-id" not in kept
    assert not any("secret-token" in v for _, v in obs.headers)
    assert kept["server"] == "nginx"
    assert kept["via"] == "1.1 filter.isp.vn"
    assert kept["x-powered-by"] == "PHP"
    assert kept["refresh"] == "0; url=http://canhbao.vn/"
    assert kept["content-type"] == "text/html; charset=utf-8"
    assert set(kept) <= http.KEPT_HEADERS


def test_observation_is_json_able() -> None:
    obs = fetch(http_response(200, "OK", page("x")))
    d = base.to_dict(obs)
    assert d["status"] == 200 and d["failure"] is None


# --- interruptions ----------------------------------------------------------------------------------


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    reset(writer)


async def close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)


async def bad_status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    writer.write(b"HTTP/1.1 two-hundred OK\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()


async def headers_then_silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + page("Chậm"))
    await writer.drain()
    await read_until_eof(reader, writer)


async def headers_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + page("Ngắt"))
    await writer.drain()
    await asyncio.sleep(0.05)
    reset(writer)


def test_reset_after_the_request() -> None:
    obs = fetch_with(reset_after_request)
    assert obs.failure == base.Failure.CONNECTION_RESET == "connection_reset"
    assert obs.interrupted_after_request is True
    assert obs.status is None


def test_close_before_any_response() -> None:
    obs = fetch_with(close_after_request)
    assert obs.failure == base.Failure.EOF == "eof_error"
    assert obs.interrupted_after_request is True


def test_silence_times_out() -> None:
    start = time.monotonic()
    obs = fetch_with(read_until_eof, ctx(SHORT))
    assert obs.failure == base.Failure.GENERIC_TIMEOUT == "generic_timeout_error"
    assert obs.interrupted_after_request is True
    assert obs.error == "no response within 0.3s"
    assert 280 <= obs.elapsed_ms < 1000
    assert time.monotonic() - start < 1.3


@pytest.mark.parametrize("handler", [bad_status_line, not_http])
def test_invalid_status_line_is_a_protocol_error(handler: Handler) -> None:
    obs = fetch_with(handler)
    assert obs.failure == base.Failure.HTTP_PROTOCOL_ERROR == "http_protocol_error"
    assert obs.status is None
    assert obs.error.startswith("invalid HTTP response")


def test_slow_body_is_judged_on_what_came_in_time() -> None:
    obs = fetch_with(headers_then_silence, ctx(SHORT))
    assert obs.failure is None
    assert obs.status == 200
    assert obs.truncated is True
    assert obs.title == "Chậm"
    assert obs.declared_length == 100000


def test_reset_during_the_body_keeps_the_response() -> None:
    obs = fetch_with(headers_then_reset)
    assert obs.failure is None
    assert obs.status == 200
    assert obs.title == "Ngắt"
    assert obs.body_length < (obs.declared_length or 0)


@pytest.mark.parametrize("target", ["/tin-tức", "/a b"], ids=["non-ascii", "space"])
def test_unsendable_target_is_a_failed_request_not_an_exception(target: str) -> None:
    received: list[bytes] = []
    done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read())  # until the probe closes the stream
        done.set()

    async def main() -> base.HttpObservation:
        async with TcpServer(handler) as server:
            obs = await get_from(server.port, target=target)
            async with asyncio.timeout(2):
                await done.wait()
            return obs

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.HTTP_REQUEST_FAILED
    assert obs.interrupted_after_request is False
    assert received == [b""]  # nothing was sent, and the stream was closed


# --- through a SOCKS vantage ------------------------------------------------------------------------


def test_http_policies_through_the_middlebox() -> None:
    block_page = http_response(200, "OK", page("Trang web bị chặn"))

    async def main() -> dict[str, base.HttpObservation]:
        async with running(FixedPageServer(http_response(200, "OK", page("Tin tức")))) as web, \
                running(FixedPageServer(block_page)) as blocker:
            policy = MiddleboxPolicy(
                http={"blocked.vn": "block", "reset.vn": "reset"}, pages={"block": (LOOPBACK, blocker.port)}
            )
            async with running(Middlebox({(LAB_WEB, 80): (LOOPBACK, web.port)}, policy)) as box:
                dialer = Socks5Dialer(f"socks5://127.0.0.1:{box.port}", loopback_only=True, simulated=("0.0.0.0/0",))
                out = {}
                for host in ("tintuc.vn", "blocked.vn", "reset.vn"):
                    sock = await dialer.connect(LAB_WEB, 80, 1.0)
                    reader, writer = await asyncio.open_connection(sock=sock)
                    out[host] = await http.get(ctx(), reader, writer, host, "/")
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                return out

    out = asyncio.run(main())
    assert out["tintuc.vn"].title == "Tin tức"
    assert out["blocked.vn"].title == "Trang web bị chặn"
    assert out["reset.vn"].failure == base.Failure.CONNECTION_RESET
    assert out["reset.vn"].interrupted_after_request is True
