"""The observation codec measured: msgspec (auditor.codec) against the standard library, on the lab's data.

    python -m bench.codec [--repeats 7] [--rounds 20]

Runs the simulated province (`auditor.lab.Lab`, loopback only) once, takes every observation it stored (each
provider's and control's: realistic sizes, 1-3 KiB of JSON each) and times, best of `--repeats`:

- encode: the pre-codec path, `probes.base.to_dict` + `json.dumps(compact, ensure_ascii=False,
  allow_nan=False)`, against `auditor.codec.encode` (msgspec);
- decode: `json.loads` + a hand decoder (dataclass fields read once per type, nested records rebuilt,
  lists to tuples), against `auditor.codec.decode` (msgspec, which also checks every type); and json.loads
  alone, the floor of any stdlib decoder.

Both paths are first checked to give the same text and equal records, so the race is between equals.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import platform
import tempfile
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from auditor import codec
from auditor.config import load_config
from auditor.engine import run_audit
from auditor.lab import Lab
from auditor.observations import UrlObservation
from auditor.store.sqlite import SqliteStore
from probes.base import to_dict


def lab_observations() -> list[UrlObservation]:
    """Every provider and control observation of one lab run, as the store gives them back."""
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp)) as lab:
        config = load_config(lab.config_path)
        with SqliteStore(":memory:") as store:
            run = asyncio.run(run_audit(config, store)).run
            records = list(store.iter_measurements(run.run_id))
            found = [r.observation for r in records if r.observation is not None]
            for url in dict.fromkeys(r.entry.url for r in records):
                control = store.control_observation(run.run_id, url)
                if control is not None:
                    found.append(control)
    return found


def stdlib_encode(obs: UrlObservation) -> str:
    return json.dumps(to_dict(obs), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_Convert = Callable[[Any], Any] | None  # None: the JSON value is the field's value as it is
_SCALARS = (str, int, float, bool, type(None), typing.Any)


def _converter(tp: Any) -> _Convert:
    """A function from the JSON value to `tp`, built once per type (the fastest stdlib decoder we found)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        convert = {f.name: _converter(hints[f.name]) for f in dataclasses.fields(tp)}
        known = set(convert)
        nested = {k: c for k, c in convert.items() if c is not None}
        cls = tp

        def record(value: dict[str, Any]) -> Any:
            return cls(**{k: (nested[k](v) if k in nested else v) for k, v in value.items() if k in known})

        return record
    if tp in _SCALARS:
        return None
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if all(a in _SCALARS for a in inner):
            return None
        (one,) = inner
        sub = _converter(one)
        assert sub is not None
        return lambda v: None if v is None else sub(v)
    if origin is tuple:
        subs = [_converter(a) for a in args if a is not Ellipsis]
        if all(s is None for s in subs):
            return tuple
        (item,) = subs
        assert item is not None
        return lambda v: tuple(map(item, v))
    if origin is dict:
        return dict
    raise TypeError(f"no stdlib converter for {tp!r}")


_HAND = _converter(UrlObservation)


def stdlib_decode(text: str) -> UrlObservation:
    assert _HAND is not None
    obs: UrlObservation = _HAND(json.loads(text))
    return obs


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--repeats", type=int, default=7, help="best of this many timings (default 7)")
    ap.add_argument("--rounds", type=int, default=20, help="passes over the observations per timing")
    args = ap.parse_args(argv)

    found = lab_observations()
    texts = [codec.encode(o) for o in found]
    for obs, text in zip(found, texts, strict=True):  # the same text, the same records: a race between equals
        assert stdlib_encode(obs) == text
        assert stdlib_decode(text) == obs == codec.decode(UrlObservation, text)
    n = len(found) * args.rounds
    sizes = sorted(len(t.encode()) for t in texts)
    decoder = msgspec.json.Decoder(UrlObservation)
    cases: dict[str, Callable[[], object]] = {
        "encode  to_dict + json.dumps": lambda: [stdlib_encode(o) for _ in range(args.rounds) for o in found],
        "encode  auditor.codec (msgspec)": lambda: [codec.encode(o) for _ in range(args.rounds) for o in found],
        "decode  json.loads alone (floor)": lambda: [json.loads(t) for _ in range(args.rounds) for t in texts],
        "decode  json.loads + hand decoder": lambda: [stdlib_decode(t) for _ in range(args.rounds) for t in texts],
        "decode  auditor.codec (msgspec)": lambda: [codec.decode(UrlObservation, t)
                                                    for _ in range(args.rounds) for t in texts],
        "decode  msgspec Decoder, no wrapper": lambda: [decoder.decode(t) for _ in range(args.rounds) for t in texts],
    }
    print(f"python {platform.python_version()}, msgspec {msgspec.__version__}; {len(found)} lab observations, "
          f"JSON {sizes[0]}-{sizes[-1]} bytes (median {sizes[len(sizes) // 2]}); best of {args.repeats} x "
          f"{args.rounds} passes")
    per: dict[str, float] = {}
    for name, fn in cases.items():
        per[name] = best(fn, args.repeats) / n * 1e6
        print(f"  {name:<38} {per[name]:8.1f} us per observation")
    enc = per["encode  to_dict + json.dumps"] / per["encode  auditor.codec (msgspec)"]
    dec = per["decode  json.loads + hand decoder"] / per["decode  auditor.codec (msgspec)"]
    print(f"  msgspec: encode {enc:.1f}x, decode {dec:.1f}x the speed of the standard library")


if __name__ == "__main__":
    main()
