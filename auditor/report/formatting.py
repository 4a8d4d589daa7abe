"""Numbers, dates and times as the reports write them: one module, so no two formats disagree on a score.

Two families:

- `format_*`: the machine formats (the ministry CSV, JSON) and anything that must match them. Fixed, in no
  language: UTC times with a `Z`, ISO dates, a compliance % TRUNCATED to one decimal (so "100.0" always
  means no violation at all), hours rounded half up.
- `fmt_*`: what people read (terminal tables, HTML), in a language (auditor.report.i18n.LANGS): Vietnamese
  writes a decimal comma (`87,5`) and dates as dd/mm/yyyy; times are local to the configured zone.

A score shown to people is the CSV's text with the language's decimal mark, never a second rounding of
the number. Hours are the exception on purpose: the CSV's are a contract (half up), the display ones are
durations for reading (`f"{h:.1f}"`, half-even); they differ only on an exact .x5.

Counts are written as plain integers (`str(n)`) by every format, with no thousands separator.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

NO_VALUE = "—"


# -- machine formats


def format_utc(value: dt.datetime) -> str:
    """`2026-11-27T22:31:05Z`: UTC, whole seconds (truncated), a literal Z."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: reports need aware datetimes")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_utc_or_none(value: dt.datetime | None) -> str | None:
    return format_utc(value) if value is not None else None


def iso_date(day: dt.date | None) -> str | None:
    """`2026-11-01`, or None when there is no date."""
    return day.isoformat() if day else None


def format_compliance_pct(pct: float | None) -> str:
    """One decimal, TRUNCATED (not rounded): 99.96 -> "99.9", so "100.0" always means no violation at all.
    Empty when there is no score."""
    if pct is None:
        return ""
    # repr() is the shortest text that reads back as the same float, so an exact 57.3 is "57.3" here and
    # is not truncated to 57.2 by way of 57.29999...
    return str(Decimal(repr(pct)).quantize(Decimal("0.1"), rounding=ROUND_DOWN))


def format_hours(hours: float | None) -> str:
    """One decimal, rounded half up (`73.25` -> `73.3`); empty when there is no value."""
    if hours is None:
        return ""
    return str(Decimal(repr(hours)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def format_asn(asn: int | None) -> str:
    """`AS7552` for people; empty when the provider has none configured (the CSV writes the bare number)."""
    return "" if asn is None else f"AS{asn}"


# -- for people, in a language


def _decimal_mark(text: str, lang: str) -> str:
    return text.replace(".", ",") if lang == "vi" else text


def fmt_pct(pct: float | None, lang: str = "en", empty: str = NO_VALUE) -> str:
    """A compliance % as the CSV writes it (one decimal, truncated), with the language's decimal mark."""
    text = format_compliance_pct(pct)
    return _decimal_mark(text, lang) if text else empty


def fmt_hours(hours: float | None, lang: str = "en", empty: str = NO_VALUE) -> str:
    """Hours with one decimal (rounded half-even is fine here: these are durations, not a contract)."""
    if hours is None:
        return empty
    return _decimal_mark(f"{hours:.1f}", lang)


def fmt_date(day: dt.date | None, lang: str = "en", empty: str = "") -> str:
    if day is None:
        return empty
    return day.strftime("%d/%m/%Y") if lang == "vi" else day.isoformat()


def _local(when: dt.datetime, timezone: str) -> dt.datetime:
    return when.astimezone(ZoneInfo(timezone))


def fmt_local(when: dt.datetime, timezone: str, lang: str = "en") -> str:
    """A run's time as the department reads it: local time in the configured zone."""
    return _local(when, timezone).strftime("%H:%M %d/%m/%Y" if lang == "vi" else "%Y-%m-%d %H:%M")


def fmt_time(when: dt.datetime, timezone: str, seconds: bool = False) -> str:
    """Local `HH:MM` (or `HH:MM:SS`), the same in both languages."""
    return _local(when, timezone).strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_short_date(when: dt.datetime, timezone: str, lang: str = "en") -> str:
    """A run's local date for an axis label: `11-28` / `28/11`."""
    return _local(when, timezone).strftime("%d/%m" if lang == "vi" else "%m-%d")
