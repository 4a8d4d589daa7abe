"""How an audit reports progress: to an observer. Only the CLI's observers (auditor.console) know terminals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auditor.models import MeasurementRecord, ProviderHealth, ProviderScore, RunInfo


class AuditObserver(Protocol):
    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None: ...
    def provider_checked(self, health: ProviderHealth) -> None: ...
    def measured(self, record: MeasurementRecord) -> None: ...
    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None: ...


class NullObserver:
    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None:
        pass

    def provider_checked(self, health: ProviderHealth) -> None:
        pass

    def measured(self, record: MeasurementRecord) -> None:
        pass

    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None:
        pass
