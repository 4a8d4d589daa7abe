"""Compatibility: the names `auditor.engine` held before it was split. New code imports from the modules:

- auditor.toolkit    what a run builds once (TLS context, fingerprints, vantages, probe functions)
- auditor.health     control and provider health, the checks a re-check repeats mid-run
- auditor.confirm    before a blocked verdict counts: control again, the vantage re-checked
- auditor.scheduler  the run: health, then every URL at control and at each provider, stored as judged
- auditor.audit      audit(): run, analyse, write the CSVs
- auditor.unattended the nightly job around audit(): lock, resume, signals
- auditor.analyst    the analyst's `auditor check`
"""

from __future__ import annotations

from auditor.analyst import ProviderCheck, UrlCheck, check_provider_urls
from auditor.audit import AuditResult, analyse_run
from auditor.audit import audit as run_audit
from auditor.health import check_control, check_provider
from auditor.progress import AuditObserver, NullObserver
from auditor.scheduler import audited_entries, config_digest, new_run_id
from auditor.toolkit import CONTROL_ID, Toolkit, build_toolkit, make_ssl_context, page_matcher
from auditor.unattended import find_unfinished

__all__ = [
    "CONTROL_ID",
    "AuditObserver",
    "AuditResult",
    "NullObserver",
    "ProviderCheck",
    "Toolkit",
    "UrlCheck",
    "analyse_run",
    "audited_entries",
    "build_toolkit",
    "check_control",
    "check_provider",
    "check_provider_urls",
    "config_digest",
    "find_unfinished",
    "make_ssl_context",
    "new_run_id",
    "page_matcher",
    "run_audit",
]
