"""Judge a stored run again: today's verdict rules and fingerprints applied to the run's stored observations.

    result = rejudge(run, store.iter_measurements(run.run_id),
                     lambda url: store.control_observation(run.run_id, url), config)
    result = store_rejudged(store, run, config)   # the same, and stored as a new run linked to `run`

`rejudge` is pure: stored records and control observations in, a `RejudgeResult` out (what changed, per
rule and per verdict, with counts and a few examples). `store_rejudged` writes a new run beside the
original, which it only reads.

What today's rules can use is what the store holds: every observation (DNS answers, connections,
certificates, status, kept headers, Location, title, lengths, hashes) but never a body. So DNS-answer
fingerprints (`dns_ips`) and header and redirect fingerprints apply anew; a body pattern matched while the
page was in memory stands as it was recorded, and a new body pattern cannot apply to a stored run.

Some judgements were not made by `auditor.verdict.judge` alone: the scheduler replaced them after it (a
blocked verdict dismissed by a failed vantage re-check or by control's re-test), or no measurement was
made at all. Those are kept as stored (`KEPT_RULES`): re-judging the observation alone would undo a
re-check that needs the network. For the same reason a verdict that becomes blocked here has not had
those re-checks (`RejudgeResult.unconfirmed_blocked`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from auditor.config import Config
from auditor.errors import UsageError
from auditor.evidence import resolve_run
from auditor.fingerprints import FingerprintSet
from auditor.models import Judgement, MeasurementRecord, RunInfo, Verdict
from auditor.observations import HopObservation, UrlObservation
from auditor.report.formatting import format_utc
from auditor.runlock import RunLock, lock_path_for
from auditor.scheduler import config_digest, new_run_id
from auditor.sensitive import UrlHasher, hasher_for, hide, is_sensitive
from auditor.store import Store, open_store
from auditor.toolkit import dns_fingerprint_lookup, provider_fingerprint_set
from auditor.verdict import judge

# Rules the scheduler gives after `judge`, or instead of it (auditor.scheduler, auditor.confirm): their
# judgements are kept as stored, with the reason shown. tests/test_rejudge.py checks that every rule given
# outside auditor.verdict is here.
KEPT_RULES: dict[str, str] = {
    "provider.not_measured": "the provider failed its health check: nothing was measured",
    "internal.error": "an internal error stopped the measurement",
    "vantage.unhealthy": "the vantage failed a re-check made while measuring",
    "control.flapped": "control's re-test no longer supported the block (made while measuring)",
}
NO_OBSERVATION = "no observation stored"
NO_CONTROL = "no control observation stored"

ControlLookup = Callable[[str], UrlObservation | None]  # URL -> the run's control observation of it


@dataclass(frozen=True)
class Rejudged:
    """One stored record judged again: `record` holds today's judgement, or the stored one when `kept`
    says why it could not be judged again."""

    record: MeasurementRecord
    stored: Judgement
    kept: str = ""  # why not re-judged ("" when re-judged)
    control: UrlObservation | None = None  # the control observation it was judged against

    @property
    def changed(self) -> bool:
        return not self.kept and self.record.judgement != self.stored


@dataclass(frozen=True)
class Example:
    provider_id: str
    url: str  # or its HMAC token, for a sensitive entry when hashing is on
    stored: Judgement  # both with the URLs and the host taken out of the evidence for a hashed entry
    new: Judgement


@dataclass(frozen=True)
class Change:
    """Judgements that went from `before` to `after` (two rule ids, or two verdicts)."""

    before: str
    after: str
    count: int
    examples: tuple[Example, ...]


@dataclass(frozen=True)
class Kept:
    """Judgements kept as stored: their stored rule, and why they could not be judged again."""

    rule: str
    reason: str
    count: int


@dataclass(frozen=True)
class RejudgeResult:
    run: RunInfo
    judgements: int  # every stored record
    unchanged: int
    changed: int  # verdict, rule, method, confidence or evidence differs
    verdict_changes: tuple[Change, ...]  # most first
    rule_changes: tuple[Change, ...]  # every changed judgement, by (stored rule, new rule); most first
    kept: tuple[Kept, ...]  # the records not re-judgeable; most first
    unconfirmed_blocked: int  # blocked now, not blocked as stored: without the re-checks a run makes
    same_config: bool  # the run was measured with this very configuration (same digest)
    stored_as: str = ""  # the new run's id (store_rejudged)

    @property
    def rejudged(self) -> int:
        return self.unchanged + self.changed

    @property
    def not_rejudgeable(self) -> int:
        return sum(k.count for k in self.kept)


class Rejudger:
    """Today's rules as a run applies them: `judge` with each provider's fingerprint set."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._global = FingerprintSet.build(config.fingerprints)
        self._providers = {p.id: p for p in config.providers}
        self._sets: dict[str, FingerprintSet] = {}

    def fingerprints(self, provider_id: str) -> FingerprintSet:
        """The provider's set (a provider no longer configured gets the global one)."""
        found = self._sets.get(provider_id)
        if found is None:
            p = self._providers.get(provider_id)
            found = provider_fingerprint_set(self._global, p) if p is not None else self._global
            self._sets[provider_id] = found
        return found

    def rejudge(self, rec: MeasurementRecord, control_of: ControlLookup) -> Rejudged:
        stored = rec.judgement
        if stored.rule in KEPT_RULES:
            return Rejudged(rec, stored, KEPT_RULES[stored.rule])
        if rec.observation is None:
            return Rejudged(rec, stored, NO_OBSERVATION)
        control = control_of(rec.entry.url)
        if control is None:
            return Rejudged(rec, stored, NO_CONTROL)
        fps = self.fingerprints(rec.provider_id)
        new = judge(with_todays_fingerprints(rec.observation, fps), control, dns_fingerprint_lookup(fps),
                    private_ok=self.config.allow_private_destinations)
        return Rejudged(replace(rec, judgement=new), stored, control=control)


def with_todays_fingerprints(obs: UrlObservation, fps: FingerprintSet) -> UrlObservation:
    """`obs` with the header and redirect fingerprints of `fps` that its stored responses match added to
    what each matched when measured (a body is never stored: body matches stand as recorded)."""
    hops = tuple(_hop_fingerprints(h, fps) for h in obs.hops)
    if all(new is old for new, old in zip(hops, obs.hops, strict=True)):
        return obs
    return replace(obs, hops=hops)


def _hop_fingerprints(hop: HopObservation, fps: FingerprintSet) -> HopObservation:
    h = hop.http
    if h is None:
        return hop
    ids = [f.id for f in fps.match_headers(h.headers)]
    redirect = fps.match_redirect(h.location) if h.location else None
    if redirect is not None:
        ids.append(redirect.id)
    added = tuple(i for i in dict.fromkeys(ids) if i not in h.fingerprints)
    return replace(hop, http=replace(h, fingerprints=h.fingerprints + added)) if added else hop


def rejudged(records: Iterable[MeasurementRecord], control_of: ControlLookup, config: Config) -> Iterator[Rejudged]:
    """Each record judged again, in the store's order."""
    rejudger = Rejudger(config)
    for rec in records:
        yield rejudger.rejudge(rec, control_of)


class _Tally:
    """Counts and the first few examples of each kind of change, as the records go by."""

    def __init__(self, config: Config, examples: int) -> None:
        self.config, self.limit = config, examples
        self.hasher: UrlHasher | None = hasher_for(config)  # a missing URL-hash key stops here, before output
        self.judgements = self.unchanged = self.unconfirmed = 0
        self.verdicts: Counter[tuple[str, str]] = Counter()
        self.rules: Counter[tuple[str, str]] = Counter()
        self.kept: Counter[tuple[str, str]] = Counter()
        self.examples: dict[tuple[str, tuple[str, str]], list[Example]] = {}

    def add(self, r: Rejudged) -> None:
        self.judgements += 1
        old, new = r.stored, r.record.judgement
        if r.kept:
            self.kept[(old.rule, r.kept)] += 1
            return
        if not r.changed:
            self.unchanged += 1
            return
        if new.verdict is Verdict.BLOCKED and old.verdict is not Verdict.BLOCKED:
            self.unconfirmed += 1
        for kind, key, counter in (("rule", (old.rule, new.rule), self.rules),
                                   ("verdict", (old.verdict.value, new.verdict.value), self.verdicts)):
            if kind == "verdict" and old.verdict is new.verdict:
                continue
            counter[key] += 1
            shown = self.examples.setdefault((kind, key), [])
            if len(shown) < self.limit:
                shown.append(self._example(r))

    def _example(self, r: Rejudged) -> Example:
        rec, stored = r.record, r.stored
        if self.hasher is not None and is_sensitive(self.config, rec.entry):
            stored = hide(replace(rec, judgement=stored), self.hasher).judgement
            rec = hide(rec, self.hasher)
        return Example(rec.provider_id, rec.entry.url, stored, rec.judgement)

    def result(self, run: RunInfo, stored_as: str = "") -> RejudgeResult:
        def changes(kind: str, counter: Counter[tuple[str, str]]) -> tuple[Change, ...]:
            return tuple(Change(b, a, n, tuple(self.examples[(kind, (b, a))]))
                         for (b, a), n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

        return RejudgeResult(
            run=run,
            judgements=self.judgements,
            unchanged=self.unchanged,
            changed=sum(self.rules.values()),
            verdict_changes=changes("verdict", self.verdicts),
            rule_changes=changes("rule", self.rules),
            kept=tuple(Kept(rule, why, n) for (rule, why), n in sorted(self.kept.items(), key=lambda kv: (-kv[1], kv[0]))),
            unconfirmed_blocked=self.unconfirmed,
            same_config=run.config_digest == config_digest(self.config),
            stored_as=stored_as,
        )


def rejudge(
    run: RunInfo, records: Iterable[MeasurementRecord], control_of: ControlLookup, config: Config, *, examples: int = 3
) -> RejudgeResult:
    """What today's rules (`config`'s fingerprints) say of the run's stored records, against what they said."""
    tally = _Tally(config, examples)
    for r in rejudged(records, control_of, config):
        tally.add(r)
    return tally.result(run)


def rejudge_stored(store: Store, run: RunInfo, config: Config, *, examples: int = 3) -> RejudgeResult:
    """`rejudge` on a run of `store`, read as it streams."""
    return rejudge(run, store.iter_measurements(run.run_id),
                   lambda url: store.control_observation(run.run_id, url), config, examples=examples)


def store_rejudged(
    store: Store, run: RunInfo, config: Config, *, examples: int = 3, now: dt.datetime | None = None
) -> RejudgeResult:
    """`rejudge_stored`, and the outcome stored as a new complete run linked to `run` (`rejudged_from`): the
    same province and start, provider health rows, control observations and observations, with today's
    judgements. `run` is only read. The result's `stored_as` is the new run's id.

    The new run starts when the original did (its observations are from then: grace periods and time to
    block count from it), so it sorts right after the original (`latest` when that was). Its rows are
    written first and its run row last: a re-judging that fails half-way leaves rows no run lists, never a
    run that looks unfinished (which `auditor run --resume` would take up)."""
    if run.status != "complete":
        raise UsageError(
            f"run {run.run_id} is {run.status}, not complete: only a complete run is stored re-judged "
            "(resume it first with `auditor run --resume`; without --store-as-new it can be re-judged as it is)"
        )
    tally = _Tally(config, examples)  # first: a missing URL-hash key stops before anything is written
    created = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    new = RunInfo(new_run_id(created), run.started_at, run.province, config_digest=config_digest(config),
                  rejudged_from=run.run_id)
    for health in store.providers(run.run_id):
        store.record_provider(replace(health, run_id=new.run_id))
    controls_copied: set[str] = set()
    positions: Counter[str] = Counter()  # each provider's list order, as the original run stored it
    for r in rejudged(store.iter_measurements(run.run_id), lambda u: store.control_observation(run.run_id, u), config):
        rec = r.record
        url = rec.entry.url
        if url not in controls_copied:
            controls_copied.add(url)
            control = r.control or store.control_observation(run.run_id, url)
            if control is not None:
                store.record_control(new.run_id, url, control)
        store.record_measurement(replace(rec, run_id=new.run_id), ordinal=positions[rec.provider_id])
        positions[rec.provider_id] += 1
        tally.add(r)
    store.flush()
    store.begin_run(new)
    store.finish_run(new.run_id, run.finished_at or created, "complete")
    return tally.result(run, stored_as=new.run_id)


def rejudge_run(config: Config, run_id: str, *, store_as_new: bool = False, examples: int = 3) -> RejudgeResult:
    """`auditor rejudge`: the run `run_id` ("latest": the newest) of the config's store judged again, and
    with `store_as_new` stored as a new run, holding the store's run lock meanwhile (no nightly run writes
    beside it). A UsageError when there is no such run."""
    with contextlib.ExitStack() as stack:
        lock_path = lock_path_for(config.store) if store_as_new else None
        if lock_path is not None:
            stack.enter_context(RunLock(lock_path).acquire({"note": "auditor rejudge --store-as-new"}))
        store = stack.enter_context(open_store(config.store))
        run = resolve_run(store, run_id, str(config.store))
        if store_as_new:
            return store_rejudged(store, run, config, examples=examples)
        return rejudge_stored(store, run, config, examples=examples)


# --- output: `auditor rejudge --format table|json` (docs/rejudge.md) ------------------------------------

JSON_SCHEMA = "auditor.rejudge/1"
EVIDENCE_CHARS = 200  # of an example's evidence in the text output (the JSON has it whole)


def render_text(result: RejudgeResult) -> str:
    """What changed, for people: totals, then the changes per verdict and per rule with examples."""
    run = result.run
    lines = [
        f"Run {run.run_id} ({run.province}, started {format_utc(run.started_at)}) judged again with today's rules",
        f"{result.judgements} judgements: {result.rejudged} re-judged ({result.unchanged} unchanged, "
        f"{result.changed} changed), {result.not_rejudgeable} not re-judgeable (kept as stored)",
    ]
    if not result.changed:
        lines.append("No judgement changed.")
    # a verdict change's example says which rules; a rule change's says why, in the new evidence
    for title, changes, by_verdict in (("Verdict changes", result.verdict_changes, True),
                                       ("Rule changes", result.rule_changes, False)):
        if changes:
            lines += ["", title]
        for c in changes:
            lines.append(f"  {c.before} -> {c.after}: {c.count}")
            for e in c.examples:
                said = f"{e.stored.rule} -> {e.new.rule}" if by_verdict else _shorten(e.new.evidence, EVIDENCE_CHARS)
                lines.append(f"    {e.provider_id} {e.url}: {said}")
    if result.kept:
        lines += ["", "Not re-judgeable (kept as stored)"]
        lines += [f"  {k.rule}: {k.count} ({k.reason})" for k in result.kept]
    notes = []
    if result.unconfirmed_blocked:
        notes.append(f"Note: {result.unconfirmed_blocked} judgement(s) blocked now were not blocked as stored: the "
                     "control re-test and the vantage re-check a run makes before a block counts need the "
                     "network and were not made here; measure again to confirm.")
    if not result.same_config:
        notes.append("Note: the run was measured with another configuration (its config digest differs).")
    if result.stored_as:
        notes.append(f"Stored as run {result.stored_as}, re-judged from run {run.run_id}.")
    return "\n".join(lines + ([""] if notes else []) + notes) + "\n"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_json(result: RejudgeResult) -> dict[str, Any]:
    """The same, for machines (docs/rejudge.md): counts, and every example whole."""
    run = result.run
    return {
        "schema": JSON_SCHEMA,
        "run": {"run_id": run.run_id, "province": run.province, "status": run.status,
                "started_at": format_utc(run.started_at), "config_digest": run.config_digest},
        "same_config": result.same_config,
        "stored_as": result.stored_as or None,
        "totals": {"judgements": result.judgements, "rejudged": result.rejudged, "unchanged": result.unchanged,
                   "changed": result.changed, "not_rejudgeable": result.not_rejudgeable,
                   "unconfirmed_blocked": result.unconfirmed_blocked},
        "verdict_changes": [_change(c) for c in result.verdict_changes],
        "rule_changes": [_change(c) for c in result.rule_changes],
        "not_rejudgeable": [{"rule": k.rule, "reason": k.reason, "count": k.count} for k in result.kept],
    }


def _change(c: Change) -> dict[str, Any]:
    return {"from": c.before, "to": c.after, "count": c.count,
            "examples": [{"provider_id": e.provider_id, "url": e.url,
                          "from": _judgement(e.stored), "to": _judgement(e.new)}
                         for e in c.examples]}


def _judgement(j: Judgement) -> dict[str, Any]:
    return {"verdict": j.verdict.value, "rule": j.rule, "method": j.method.value if j.method else None,
            "confidence": j.confidence.value if j.confidence else None, "evidence": j.evidence}
