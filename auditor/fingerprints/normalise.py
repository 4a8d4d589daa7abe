"""The forms values and patterns are compared in: addresses, host names, bodies.

Matching follows OONI's semantics (case-sensitive) with two deliberate additions: IP addresses are compared
in canonical form, and in bodies a CRLF counts the same as an LF (OONI's CSV stores its multi-line body
patterns with CRLF line ends, while many servers send LF).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from auditor import urls

_DOTTED_QUAD = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


def normalise_address(value: str) -> str:
    """Canonical text of an address: '::ffff:1.2.3.4' -> '1.2.3.4', '010.001.2.3' -> '10.1.2.3',
    IPv6 compressed and lower-case. Anything that is not an IP address is lower-cased (OONI's dns file
    also holds a few host names)."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        m = _DOTTED_QUAD.fullmatch(text)
        # ipaddress rejects leading zeros (they meant octal to inet_aton); resolvers' answers never have
        # them, so a config or CSV that does means decimal.
        if m and all(int(octet) <= 255 for octet in m.groups()):
            return ".".join(str(int(octet)) for octet in m.groups())
        return text.lower().rstrip(".")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normalise_host(host: str) -> str:
    """A host name as compared for redirects: the tool's one spelling of a name (auditor.urls.normalise_host:
    lower case, IDNA A-labels, one trailing dot dropped), and an IP literal in the canonical form OONI's
    rows are compared in (dotted quads with leading zeros, v4-mapped v6). Raises ValueError (UrlError) for
    what is not a host."""
    text = host.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if is_ip(bare) or _DOTTED_QUAD.fullmatch(bare.rstrip(".")):
        return normalise_address(bare.rstrip("."))
    return urls.normalise_host(text)


def location_host(location: str) -> str:
    """The normalised host of a Location header's URL ("" for a relative or unparsable one)."""
    try:
        hostname = urlsplit(location.strip()).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return ""
    if not hostname:
        return ""
    try:
        return normalise_host(hostname)
    except ValueError:
        return hostname.lower().rstrip(".")


def normalise_body(text: str) -> str:
    return text.replace("\r\n", "\n") if "\r" in text else text


def identity(text: str) -> str:
    return text
