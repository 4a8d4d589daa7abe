"""How the run behaves: `timeouts`, `concurrency`, `tls`, `grace_hours`, `timezone`, `network` and `limits`.

Each returns its default for an absent or null key, and also for a bad value (reported), so that the
rest of the document is still checked.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import ssl
import zoneinfo
from pathlib import Path

from auditor.config.checks import Checker, show
from auditor.config.keys import LIMITS_KEYS, NETWORK_FIELDS, NETWORK_KEYS, TIMEOUT_KEYS, TLS_KEYS
from auditor.config.model import Config, LimitsConfig, Timeouts

MAX_TIMEOUT = 300  # seconds: a single probe step stuck longer than this would stall the nightly run
MAX_CONCURRENCY = 10_000


def timeouts(check: Checker, value: object, path: str) -> Timeouts:
    defaults = Timeouts()
    if value is None:
        return defaults
    found = check.mapping(value, path, TIMEOUT_KEYS, "{dns: 3, connect: 5, tls: 5, http: 10}")
    if found is None:
        return defaults
    seconds_by_key: dict[str, float] = {}
    for key in TIMEOUT_KEYS:
        if found.get(key) is None:
            continue
        default = getattr(defaults, key)
        seconds = check.number(
            found[key],
            f"{path}.{key}",
            0,
            MAX_TIMEOUT,
            f"must be a positive number of seconds up to {MAX_TIMEOUT}, e.g. {default:g}",
        )
        if seconds is not None and seconds <= 0:
            check.add(f"{path}.{key}", f"must be a positive number of seconds, e.g. {default:g}")
        elif seconds is not None:
            seconds_by_key[key] = seconds
    return Timeouts(**seconds_by_key)


def concurrency(check: Checker, value: object, path: str) -> int | None:
    if value is None:
        return Config.concurrency
    return check.integer(
        value,
        path,
        1,
        MAX_CONCURRENCY,
        f"must be a whole number of probes at once from 1 to {MAX_CONCURRENCY}, e.g. 100",
    )


def grace_hours(check: Checker, value: object, path: str) -> float | None:
    if value is None:
        return Config.grace_hours
    return check.number(value, path, 0, math.inf, "must be a number of hours, 0 or more, e.g. 24")


def tls(check: Checker, value: object, path: str) -> Path | None:
    """tls.extra_ca_file: a PEM file of CA certificates to trust besides the system's."""
    if value is None:
        return None
    found = check.mapping(value, path, TLS_KEYS, "{extra_ca_file: /etc/auditor/provincial-ca.pem}")
    if found is None or found.get("extra_ca_file") is None:
        return None
    where = f"{path}.extra_ca_file"
    ca_file = check.existing_file(found["extra_ca_file"], where, "CA file", "/etc/auditor/provincial-ca.pem")
    if ca_file is None:
        return None
    try:  # local file parsing only; catches a DER file or a key instead of a certificate before the run
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError, ValueError) as exc:
        check.add(
            where,
            f"{ca_file} is not a PEM file of CA certificates ({exc}); convert it with "
            "`openssl x509 -inform der -in CA.cer -out CA.pem`",
        )
        return None
    return ca_file


def timezone(check: Checker, value: object, path: str) -> str:
    default = Config.timezone
    if value is None:
        return default
    name = check.text(value, path, default)
    if name is None:
        return default
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"e.g. {default}"
        check.add(path, f"unknown time zone {show(name)}; {hint}")
        return default
    return name


def network(check: Checker, value: object, path: str) -> dict[str, bool]:
    """The Config flags that the network section fills (loopback_only, ...), by field name."""
    flags = {name: False for name in NETWORK_FIELDS.values() if name != "simulated_internet"}
    if value is None:
        return flags
    found = check.mapping(value, path, NETWORK_KEYS, "{loopback_only: false}")
    if found is None:
        return flags
    for key, name in NETWORK_FIELDS.items():
        if name in flags and found.get(key) is not None:
            flags[name] = check.boolean(found[key], f"{path}.{key}") or False
    return flags


def simulated_internet(check: Checker, value: object, path: str) -> tuple[str, ...]:
    """network.simulated_internet: CIDR ranges, only with loopback_only (the lab writes them)."""
    if not isinstance(value, dict) or value.get("simulated_internet") is None:
        return ()
    where = f"{path}.simulated_internet"
    ranges: list[str] = []
    for item_path, item in check.items(value, path, "simulated_internet", '["45.76.0.0/16"]'):
        text = check.text(item, item_path, "45.76.0.0/16")
        if text is None:
            continue
        try:
            ranges.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            check.add(item_path, f"{show(text)} is not an address range; write one like 45.76.0.0/16")
    if ranges and value.get("loopback_only") is not True:
        check.add(where, "only with loopback_only: true (a simulated Internet lives behind a proxy on loopback)")
    return tuple(ranges)


def limits(check: Checker, value: object, path: str) -> LimitsConfig:
    if value is None:
        return LimitsConfig()
    found = check.mapping(value, path, LIMITS_KEYS, "{resolver_qps: 100, per_destination: 8}")
    if found is None:
        return LimitsConfig()
    qps, per_destination = LimitsConfig.resolver_qps, LimitsConfig.per_destination
    if found.get("resolver_qps") is not None:
        got_qps = check.number(
            found["resolver_qps"],
            f"{path}.resolver_qps",
            0,
            100_000,
            "must be queries per second, 0 or more (0: no limit), e.g. 100",
        )
        qps = qps if got_qps is None else got_qps
    if found.get("per_destination") is not None:
        got = check.integer(
            found["per_destination"],
            f"{path}.per_destination",
            0,
            10_000,
            "must be a whole number of connections, 0 or more (0: no limit), e.g. 8",
        )
        per_destination = per_destination if got is None else got
    return LimitsConfig(qps, per_destination)
