"""Who is measured and against what: `control` and `providers`, each with its resolvers and vantage.

Resolvers must be IP literals: looking a name up would itself be a measurement (through which resolver,
from which vantage?).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from auditor.config.checks import MISSING, Checker, kind, quote_hint, show
from auditor.config.fingerprints import fingerprints
from auditor.config.keys import CONTROL_KEYS, PROVIDER_KEYS
from auditor.config.lines import join
from auditor.config.model import ControlConfig, ProviderConfig, ResolverAddress, VantageConfig
from auditor.config.vantage import vantage

MAX_ASN = 4_294_967_295  # 32-bit AS numbers (RFC 6793)

_PROVIDER_ID = re.compile(r"[a-z0-9_-]+")
_RESOLVER_EXAMPLE = "1.1.1.1 or 8.8.8.8:53"
_RESOLVER_FORMS = (
    f"must be IP or IP:PORT, e.g. {_RESOLVER_EXAMPLE} ([2001:4860:4860::8888]:53 for IPv6 with a port)"
)


def control(check: Checker, top: dict[Any, Any]) -> ControlConfig:
    example = "{resolvers: [1.1.1.1, 8.8.8.8], vantage: {}}"
    value = check.required(top, "", "control", f"the control vantage and resolvers, e.g. control: {example}")
    if value is MISSING:
        return ControlConfig(resolvers=())
    found = check.mapping(value, "control", CONTROL_KEYS, example)
    if found is None:
        return ControlConfig(resolvers=())
    resolvers_ = resolvers(
        check, found, "control", "trusted public resolvers, e.g. resolvers: [1.1.1.1, 8.8.8.8]"
    )
    vantage_ = vantage(check, found.get("vantage"), "control.vantage")
    return ControlConfig(resolvers=resolvers_, vantage=vantage_ or VantageConfig())


def providers(check: Checker, top: dict[Any, Any]) -> tuple[ProviderConfig, ...]:
    example = "[{id: viettel, name: Viettel, resolvers: [...], vantage: {...}}]"
    value = check.required(top, "", "providers", f"the providers to audit, e.g. providers: {example}")
    if value is MISSING:
        return ()
    items = check.sequence(value, "providers", example)
    if items is None:
        return ()
    if not items:
        check.add("providers", f"needs at least one provider, e.g. {example}")
    found: list[ProviderConfig] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"providers[{index}]"
        one = provider(check, item, path)
        if one is not None:
            found.append(one)
        # Checked on the raw id, so a duplicate shows up even while the provider has other problems.
        ident = item.get("id") if isinstance(item, dict) else None
        if not (isinstance(ident, str) and _PROVIDER_ID.fullmatch(ident)):
            continue
        if ident in first_index:
            check.add(
                f"{path}.id",
                f"duplicate id {show(ident)} (also providers[{first_index[ident]}]); "
                "give each provider its own id",
            )
        else:
            first_index[ident] = index
    return tuple(found)


def provider(check: Checker, value: object, path: str) -> ProviderConfig | None:
    example = "{id: viettel, name: Viettel, asn: 7552, resolvers: [203.113.131.1], vantage: {...}}"
    found = check.mapping(value, path, PROVIDER_KEYS, example)
    if found is None:
        return None
    raw_id = check.required(
        found, path, "id", "a short id of lowercase letters, digits, '_' or '-', e.g. viettel"
    )
    ident = provider_id(check, raw_id, f"{path}.id") if raw_id is not MISSING else None
    raw_name = check.required(found, path, "name", 'the provider\'s name for reports, e.g. name: "Viettel"')
    name = check.text(raw_name, f"{path}.name", '"Viettel"') if raw_name is not MISSING else None
    number = asn(check, found["asn"], f"{path}.asn") if found.get("asn") is not None else None
    resolvers_ = resolvers(
        check,
        found,
        path,
        "the provider's own resolvers, queried from its vantage, e.g. resolvers: [203.113.131.1]",
    )
    vantage_ = vantage(check, found.get("vantage"), f"{path}.vantage")
    fingerprints_ = fingerprints(check, found.get("fingerprints"), f"{path}.fingerprints")
    if ident is None or name is None or vantage_ is None:
        return None
    return ProviderConfig(
        id=ident, name=name, resolvers=resolvers_, vantage=vantage_, asn=number, fingerprints=fingerprints_
    )


def provider_id(check: Checker, value: object, path: str) -> str | None:
    if isinstance(value, str) and _PROVIDER_ID.fullmatch(value):
        return value
    suggestion = (
        re.sub(r"[^a-z0-9_-]+", "-", value.strip().lower()).strip("-") if isinstance(value, str) else ""
    )
    example = show(suggestion) if suggestion else "viettel"
    got = f"; got {kind(value)}" if not isinstance(value, str) else ""
    check.add(
        path,
        "must be lowercase letters, digits, '_' or '-' (it names the provider in reports), "
        f"e.g. {example}{got}",
    )
    return None


def asn(check: Checker, value: object, path: str) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"(?i)\s*AS\s*\d+\s*", value):
        digits = re.sub(r"\D", "", value)
        check.add(path, f"must be the AS number alone, without 'AS' or quotes, e.g. {int(digits)}")
        return None
    return check.integer(value, path, 1, MAX_ASN, f"must be an AS number from 1 to {MAX_ASN}, e.g. 7552")


def resolvers(check: Checker, mapping: dict[Any, Any], path: str, what: str) -> tuple[ResolverAddress, ...]:
    value = check.required(mapping, path, "resolvers", what)
    if value is MISSING:
        return ()
    where = join(path, "resolvers")
    items = check.sequence(value, where, f"[{_RESOLVER_EXAMPLE.replace(' or ', ', ')}]")
    if items is None:
        return ()
    if not items:
        check.add(where, f"needs at least one resolver; {what}")
    found = [resolver(check, item, f"{where}[{i}]") for i, item in enumerate(items)]
    return tuple(r for r in found if r is not None)


def resolver(check: Checker, value: object, path: str) -> ResolverAddress | None:
    if not isinstance(value, str):
        check.add(path, f"{_RESOLVER_FORMS}; got {kind(value)}{quote_hint(value)}")
        return None
    text = value.strip()
    port_text: str | None = None
    if text.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\](?::([^:]*))?", text)
        if match is None:
            check.add(path, f"{_RESOLVER_FORMS}; got {show(text)}")
            return None
        host, port_text = match[1], match[2]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:  # no colon: IPv4 or a name; two or more: a bare IPv6 address (no port without brackets)
        host = text
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if re.fullmatch(r"(?i)[a-z0-9_.-]*[a-z_-][a-z0-9_.-]*", host):
            check.add(
                path,
                f"host names are not allowed ({show(host)}): looking a name up would itself be a "
                f"measurement; write the resolver's IP address, e.g. {_RESOLVER_EXAMPLE}",
            )
        else:
            check.add(path, f"{_RESOLVER_FORMS}; got {show(text)}")
        return None
    if text.startswith("[") and ip.version == 4:
        check.add(
            path, f"brackets are only for IPv6 addresses; write {ip}" + (f":{port_text}" if port_text else "")
        )
        return None
    if ip.is_unspecified or ip.is_multicast:
        check.add(path, f"{ip} cannot be a resolver's address; {_RESOLVER_FORMS}")
        return None
    port = 53
    if port_text is not None:
        if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
            check.add(path, f"the port must be a number from 1 to 65535, e.g. {ResolverAddress(str(ip), 53)}")
            return None
        port = int(port_text)
    return ResolverAddress(ip=str(ip), port=port)
