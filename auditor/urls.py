"""Normalising the URLs of reference lists, so that one site has one spelling.

Two rows that a browser would treat as the same address must end up with the same `url`, because the
list reader merges duplicates by it and the store keys measurements by it. The rules follow what browsers
do (WHATWG URL) where it matters to us, without trying to be a full URL parser:

- a bare domain (`example.com/path`) means `http://example.com/path`;
- scheme and host are lower-cased; the host is IDNA-encoded with UTS 46 (IDNA 2008), so Vietnamese names
  such as `Trẻem-Việt.vn` become `xn--...`; IPv4 and bracketed IPv6 literals are kept as addresses;
- the default port (80, 443) is dropped from `url`, other ports are kept;
- the fragment is dropped (it never leaves the browser); an empty path becomes `/`;
- non-ASCII and unsafe characters in the path and query are percent-encoded, existing `%XX` kept as is.
- a URL longer than MAX_URL_LENGTH characters is refused, and error messages quote at most a few dozen
  characters of it: a list row can be a 1 MB cell.

`normalise_host` is the tool's one host normaliser: the config's hosts (proxy hosts, redirect hosts) go
through it too, so that a host written in the config compares equal to the same host in a list or a URL.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote

import idna

DEFAULT_PORTS = {"http": 80, "https": 443}
# Longer URLs are refused: most servers answer 414 beyond 8 KiB (nginx, Apache), and the longest URL in the
# Citizen Lab lists has 155 characters. The limit keeps a 1 MB cell from a damaged list out of the IDNA code
# and out of error messages.
MAX_URL_LENGTH = 8192
# A host of more characters than this cannot make 253 after UTS 46 mapping, unless it is mostly characters
# the mapping deletes (soft hyphens); refused before the cached IDNA step so that the cache stays small.
_MAX_HOST_TEXT = 1024


class UrlError(ValueError):
    """A URL that cannot be normalised; the message says what is wrong with it."""


@dataclass(frozen=True)
class NormalisedUrl:
    url: str  # scheme://host[:port]/path?query, default port and fragment dropped
    scheme: str  # "http" or "https"
    host: str  # IDNA ASCII, lower-case, no trailing dot; an IP literal without brackets
    port: int  # always set: the scheme's default when the URL has none
    path_query: str  # path plus "?query" when there is one; at least "/"


_SCHEME_AND_REST = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://(.*)", re.DOTALL)
# "mailto:x" and "javascript:..." have a scheme but no "//". "localhost:8080/" is a bare host with a port:
# what follows its colon is a number. A dotted name before a colon ("example.com:x") is a host, not a scheme.
_OPAQUE_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+\-]*):")
_PORT_AFTER_COLON = re.compile(r"\d*(?:[/?#]|$)")
_AUTHORITY_END = re.compile(r"[/?#]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# DNS itself allows any octet; browsers and resolvers accept "_" in real host names (e.g. some
# blogspot subdomains), which strict IDNA 2008 rejects, so ASCII labels are checked by this instead.
_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
# The common case, checked in one go: plain ASCII labels, no punycode, a top-level label that is not a number.
_PLAIN_ASCII_HOST = re.compile(rf"(?:{_ASCII_LABEL.pattern}\.)*(?!\d+$){_ASCII_LABEL.pattern}")
# A "%" not starting a %XX escape is a literal percent sign: encode it, as browsers do.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar minus the unreserved characters that quote() always keeps; "%" is kept so that existing
# escapes survive, and lone ones are fixed separately.
_PATH_SAFE = "/%:@!$&'()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?[]"  # "a[]=1" is common in queries and means the same to servers
# Most paths and queries need no encoding at all; these say so faster than quote() would.
_PLAIN_PATH = re.compile(r"[\w.~\-/:@!$&'()*+,;=]*", re.ASCII)
_PLAIN_QUERY = re.compile(r"[\w.~\-/:@!$&'()*+,;=?\[\]]*", re.ASCII)


def normalise_url(raw: str) -> NormalisedUrl:
    text = raw.strip()
    if not text:
        raise UrlError("empty URL")
    if len(text) > MAX_URL_LENGTH:
        raise UrlError(f"URL is too long ({len(text)} characters, at most {MAX_URL_LENGTH})")
    if _CONTROL_CHARS.search(text):
        raise UrlError("URL contains a control character (a line break or a tab?)")

    match = _SCHEME_AND_REST.fullmatch(text)
    if match:
        scheme, rest = match.group(1).lower(), match.group(2)
    elif text.startswith("//"):
        scheme, rest = "http", text[2:]
    else:
        opaque = _OPAQUE_SCHEME.match(text)
        if opaque and opaque.group(1).lower() in DEFAULT_PORTS:
            raise UrlError(f"cannot parse URL: expected '//' after '{_clip(opaque.group(0))}'")
        if opaque and not _PORT_AFTER_COLON.match(text, opaque.end()):
            raise UrlError(f"unsupported scheme '{_clip(opaque.group(1).lower())}' (only http and https)")
        scheme, rest = "http", text  # a bare domain, as people write them in lists
    if scheme not in DEFAULT_PORTS:
        raise UrlError(f"unsupported scheme '{_clip(scheme)}' (only http and https)")

    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    path_query = rest[len(authority) :]
    if "@" in authority:
        raise UrlError("user name or password in the URL is not supported")

    host_text, port_text = _split_host_port(authority)
    host = normalise_host(host_text)
    port = _parse_port(port_text, DEFAULT_PORTS[scheme])

    path_query = path_query.split("#", 1)[0]
    path, question, query = path_query.partition("?")
    path = _percent_encode(path or "/", _PATH_SAFE, _PLAIN_PATH)
    path_query = path + (question + _percent_encode(query, _QUERY_SAFE, _PLAIN_QUERY) if question else "")

    host_in_url = f"[{host}]" if ":" in host else host  # only an IPv6 address has a colon
    port_in_url = "" if port == DEFAULT_PORTS[scheme] else f":{port}"
    return NormalisedUrl(
        url=f"{scheme}://{host_in_url}{port_in_url}{path_query}",
        scheme=scheme,
        host=host,
        port=port,
        path_query=path_query,
    )


def display_host(ascii_host: str) -> str:
    """The Unicode form of an IDNA host, for people to read; the ASCII form when it cannot be decoded."""
    labels = ascii_host.split(".")
    try:
        return ".".join(idna.ulabel(label) if label.startswith("xn--") else label for label in labels)
    except (idna.IDNAError, UnicodeError):
        return ascii_host


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise UrlError("IPv6 address is missing its closing ']'")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise UrlError(f"unexpected text after the IPv6 address: '{_clip(after)}'")
        return host, after[1:] if after else None
    if authority.count(":") > 1:
        raise UrlError("an IPv6 address in a URL must be in brackets, e.g. http://[2001:db8::1]/")
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _parse_port(port_text: str | None, default: int) -> int:
    if not port_text:  # "example.com:" means the default port, as in browsers
        return default
    if not port_text.isascii() or not port_text.isdigit():
        raise UrlError(f"bad port '{_clip(port_text)}': not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise UrlError(f"bad port {port}: must be 1 to 65535")
    return port


def normalise_host(text: str) -> str:
    """The one spelling of a host, for every place that compares hosts: list URLs, config, fingerprints.

    `text` is the host alone (no port, no surrounding spaces). A name becomes lower-case ASCII, IDNA-encoded
    with UTS 46 (IDNA 2008), one trailing dot (the DNS root) dropped; its labels are 1-63 letters, digits,
    '-' or '_'. A name whose last label is a number is an IPv4 address, as in browsers. An IPv6 address,
    in brackets or not, is compressed. Raises UrlError saying what is wrong.
    """
    if text.startswith("["):
        if not text.endswith("]"):
            raise UrlError("IPv6 address is missing its closing ']'")
        return _normalise_ipv6(text[1:-1])
    if ":" in text:  # no name has a colon: a bare IPv6 address, e.g. urlsplit().hostname
        return _normalise_ipv6(text)
    host_text = text.removesuffix(".")  # the DNS root: "example.com." is "example.com"
    if not host_text:
        raise UrlError("no host in URL")
    if len(host_text) > _MAX_HOST_TEXT:
        raise UrlError(f"host name is too long ({len(host_text)} characters, at most 253)")
    return _normalise_domain(host_text)


def _normalise_ipv6(address: str) -> str:
    if "%" in address:
        raise UrlError("IPv6 zone identifiers (%...) are not supported")
    try:
        return ipaddress.IPv6Address(address).compressed
    except ValueError as exc:
        raise UrlError(f"bad IPv6 address '{_clip(address)}': {_clip(str(exc), 160)}") from None


@functools.lru_cache(maxsize=65536)  # lists repeat hosts a lot, and IDNA is the slow part of a row
def _normalise_domain(host: str) -> str:
    if host.isascii():
        host = host.lower()
        if len(host) <= 253 and "xn--" not in host and _PLAIN_ASCII_HOST.fullmatch(host):
            return host
        labels = host.split(".")
    else:
        try:
            # UTS 46 mapping: case folding, NFC (Vietnamese keyboards may type combining tone marks),
            # full-width dots and letters.
            mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except idna.IDNAError as exc:
            raise UrlError(f"bad host name '{_clip(host)}': {_clip(str(exc), 160)}") from None
        labels = mapped.removesuffix(".").split(".")  # a full-width trailing dot is the root too

    # A host whose last label is a number is an IPv4 address in browsers, or nothing at all.
    if labels[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(".".join(labels)))
        except ValueError:
            raise UrlError(f"bad IPv4 address '{_clip(host)}'") from None

    ascii_labels = [_ascii_label(label, host) for label in labels]
    result = ".".join(ascii_labels)
    if len(result) > 253:
        raise UrlError(f"host name is too long ({len(result)} characters, at most 253)")
    return result


def _ascii_label(label: str, host: str) -> str:
    if not label:
        raise UrlError(f"bad host name '{_clip(host)}': empty label")
    try:
        if not label.isascii():
            return idna.alabel(label).decode("ascii")
        if label.startswith("xn--"):
            idna.ulabel(label)  # only to reject punycode that does not decode
            return label
    except (idna.IDNAError, UnicodeError) as exc:
        raise UrlError(f"bad host name '{_clip(host)}': {_clip(str(exc), 160)}") from None
    if not _ASCII_LABEL.fullmatch(label):
        raise UrlError(
            f"bad host name '{_clip(host)}': label '{_clip(label)}' must be 1-63 letters, digits, '-' or '_',"
            " not starting or ending with '-'"
        )
    return label


def _clip(text: str, limit: int = 80) -> str:
    """`text` shortened for an error message, which is printed once per bad row of a list."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent_encode(text: str, safe: str, plain: re.Pattern[str]) -> str:
    if plain.fullmatch(text):
        return text
    return quote(_LONE_PERCENT.sub("%25", text), safe=safe)
