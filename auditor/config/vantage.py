"""Where a provider's (or control's) traffic leaves from: `vantage: {}` (direct), `{source_address: IP}`,
`{interface: NAME}` or `{proxy: socks5://...}`."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlsplit

from auditor.config.checks import Checker, kind, quote_hint, show
from auditor.config.keys import VANTAGE_KEYS
from auditor.config.model import VantageConfig
from auditor.urls import UrlError, normalise_host

MAX_IFNAME = 15  # Linux IFNAMSIZ (16) minus the terminating NUL

_PROXY_EXAMPLE = (
    "socks5://127.0.0.1:1080 (from `ssh -D 1080 probe@box-on-the-line`) or socks5://user:pass@10.0.0.2:1080"
)


def vantage(check: Checker, value: object, path: str) -> VantageConfig | None:
    if value is None:
        return VantageConfig()
    example = (
        "{} (direct), {source_address: 192.168.2.10}, {interface: ppp0} or {proxy: socks5://127.0.0.1:1080}"
    )
    found = check.mapping(value, path, VANTAGE_KEYS, example)
    if found is None:
        return None
    kinds = [key for key in VANTAGE_KEYS if key in found]
    if not kinds:
        return VantageConfig()
    if len(kinds) > 1:
        both = " and ".join(repr(k) for k in kinds)
        check.add(
            path,
            f"has both {both}; a vantage is exactly one of source_address, interface or proxy "
            "(or {} to connect directly)",
        )
        return None
    where = f"{path}.{kinds[0]}"
    raw = found[kinds[0]]
    if kinds[0] == "source_address":
        address = source_address(check, raw, where)
        return VantageConfig("source_address", address) if address else None
    if kinds[0] == "interface":
        name = interface(check, raw, where)
        return VantageConfig("interface", name) if name else None
    url = proxy(check, raw, where)
    return VantageConfig("proxy", url) if url else None


def source_address(check: Checker, value: object, path: str) -> str | None:
    what = "must be an IP address of this machine to send from, e.g. 192.168.2.10"
    if not isinstance(value, str):
        check.add(path, f"{what}; got {kind(value)}{quote_hint(value)}")
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        check.add(path, f"{what}; got {show(value)}")
        return None
    if ip.is_unspecified or ip.is_multicast:
        check.add(
            path, f"{ip} is not a usable source address; {what} (or write vantage: {{}} to connect directly)"
        )
        return None
    return str(ip)


def interface(check: Checker, value: object, path: str) -> str | None:
    name = check.text(value, path, "ppp0 or eth1")
    if name is None:
        return None
    # Linux takes up to 15 bytes except '/' and whitespace; we also insist on printable ASCII, which
    # every real interface name is, so the dialer can hand it to SO_BINDTODEVICE as is.
    if len(name) > MAX_IFNAME or not (name.isascii() and name.isprintable()) or " " in name or "/" in name:
        check.add(
            path,
            f"must be a network interface name of at most {MAX_IFNAME} ASCII characters without "
            "spaces or '/', e.g. ppp0 or eth1 (see `ip link`)",
        )
        return None
    return name


def proxy(check: Checker, value: object, path: str) -> str | None:
    # Never echo the URL itself: it may carry a password.
    if not isinstance(value, str) or not value.strip():
        check.add(path, f"must be a SOCKS5 URL, e.g. {_PROXY_EXAMPLE}; got {kind(value)}")
        return None
    url = value.strip()
    if not (url.isascii() and url.isprintable()):
        check.add(
            path,
            f"must be plain ASCII (percent-encode other characters in the user or password); "
            f"e.g. {_PROXY_EXAMPLE}",
        )
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        check.add(path, f"is not a valid URL; write e.g. {_PROXY_EXAMPLE}")
        return None
    scheme = parts.scheme.lower()
    if scheme != "socks5":
        if scheme == "socks5h":
            message = (
                "use socks5://, not socks5h://: the auditor resolves names itself, through the "
                "provider's resolvers, and never lets the proxy do it"
            )
        elif "://" not in url:
            message = "must start with socks5://"
        else:
            message = f"unsupported proxy scheme {show(scheme)}: only socks5:// is supported"
        check.add(path, f"{message}; e.g. {_PROXY_EXAMPLE}")
        return None
    problems: list[str] = []
    if not host:
        problems.append("a host")
    elif not _is_host(host):
        problems.append("a valid host name or IP address (IPv6 in brackets: socks5://[::1]:1080)")
    if port is None or port == 0:
        problems.append("a port from 1 to 65535 (ssh -D 1080 listens on 1080)")
    if "@" in parts.netloc and (not parts.username or parts.password is None):
        problems.append("both user and password before '@' (user:pass@host:port), or no '@' at all")
    elif (
        len(unquote(parts.username or "").encode()) > 255 or len(unquote(parts.password or "").encode()) > 255
    ):
        problems.append("a user and password of at most 255 bytes each (RFC 1929)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append("nothing after host:port (no path, query or fragment)")
    if problems:
        check.add(path, f"the proxy URL needs {'; '.join(problems)}; e.g. {_PROXY_EXAMPLE}")
        return None
    return url


def _is_host(host: str) -> bool:
    """An IP address as the dialer takes it (a link-local one with its %zone too), or a valid host name."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        normalise_host(host)
    except UrlError:
        return False
    return True
