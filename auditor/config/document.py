"""The whole document: its top-level keys, each checked by its section's module, into one Config."""

from __future__ import annotations

from auditor.config import outputs, providers, settings, urllists
from auditor.config.checks import EXAMPLE_FILE, MISSING, Checker
from auditor.config.evidence import evidence
from auditor.config.fingerprints import fingerprints
from auditor.config.keys import TOP_KEYS
from auditor.config.model import Config
from auditor.config.sensitive import sensitive


def config(check: Checker, data: object) -> Config | None:
    """The Config, or None when `check` recorded a problem (every problem of the document, not the first)."""
    top = check.mapping(data, "", TOP_KEYS, f"province: ..., providers: [...] (see {EXAMPLE_FILE})")
    if top is None:
        return None
    raw_province = check.required(top, "", "province", 'the province\'s name, e.g. province: "Gia Lai"')
    province = check.text(raw_province, "province", '"Gia Lai"') if raw_province is not MISSING else None

    store = outputs.store(check, top.get("store"), "store")
    output_dir = outputs.output_dir(check, top.get("output_dir"), "output_dir")
    lists = urllists.lists(check, top)
    canaries = urllists.canaries(check, top)
    control = providers.control(check, top)
    provider_configs = providers.providers(check, top)
    global_fingerprints = fingerprints(check, top.get("fingerprints"), "fingerprints")
    timeouts = settings.timeouts(check, top.get("timeouts"), "timeouts")
    concurrency = settings.concurrency(check, top.get("concurrency"), "concurrency")
    extra_ca_file = settings.tls(check, top.get("tls"), "tls")
    grace_hours = settings.grace_hours(check, top.get("grace_hours"), "grace_hours")
    timezone = settings.timezone(check, top.get("timezone"), "timezone")
    network = settings.network(check, top.get("network"), "network")
    simulated_internet = settings.simulated_internet(check, top.get("network"), "network")
    evidence_ = evidence(check, top.get("evidence"), "evidence")
    sensitive_ = sensitive(check, top.get("sensitive"), "sensitive", lists)
    limits = settings.limits(check, top.get("limits"), "limits")
    must_block = urllists.url_list(check, top, "must_block")
    must_allow = urllists.url_list(check, top, "must_allow")

    if check.problems or province is None or concurrency is None or grace_hours is None:
        return None
    return Config(
        province=province,
        store=store,
        output_dir=output_dir,
        lists=lists,
        canaries=canaries,
        control=control,
        providers=provider_configs,
        fingerprints=global_fingerprints,
        timeouts=timeouts,
        concurrency=concurrency,
        extra_ca_file=extra_ca_file,
        grace_hours=grace_hours,
        timezone=timezone,
        loopback_only=network["loopback_only"],
        allow_private_destinations=network["allow_private_destinations"],
        limits=limits,
        sensitive=sensitive_,
        must_block=must_block,
        must_allow=must_allow,
        evidence=evidence_,
        simulated_internet=simulated_internet,
    )
