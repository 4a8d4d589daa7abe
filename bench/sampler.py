"""A statistical CPU profiler for the benchmark: every `interval` seconds of process CPU (SIGPROF), note the
Python stack the main thread is running.

Why not only cProfile: cProfile times every call, which on this call-heavy asyncio code makes the engine 5 to
7 times slower and inflates small Python functions against C (OpenSSL, the kernel). A sample per
millisecond of CPU costs about 1% and leaves the proportions as they are. Time spent in C (a TLS handshake,
a send() into the kernel) counts for the Python frame that called it, which is what the areas below use.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType

Key = tuple[str, int, str]  # filename, first line, function


class Sampler:
    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.samples = 0
        self.own: Counter[Key] = Counter()  # the innermost Python frame
        self.stack: Counter[Key] = Counter()  # anywhere on the stack (counted once per sample)

    def _on_sample(self, _signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        seen: set[Key] = set()
        first = True
        while frame is not None:
            code = frame.f_code
            key = (code.co_filename, code.co_firstlineno, code.co_name)
            if first:
                self.own[key] += 1
                first = False
            if key not in seen:
                seen.add(key)
                self.stack[key] += 1
            frame = frame.f_back

    def start(self) -> None:
        signal.signal(signal.SIGPROF, self._on_sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def share_own(self, classify: Callable[[str, str], str]) -> Counter[str]:
        """Samples by area of the innermost frame: where the CPU goes."""
        out: Counter[str] = Counter()
        for (filename, _line, func), n in self.own.items():
            out[classify(filename, func)] += n
        return out

    def share_within(self, markers: dict[str, tuple[tuple[str, str], ...]]) -> Counter[str]:
        """Samples with one of a marker's functions, (path suffix, function name), on the stack. A marker's
        functions must not call one another (a sample would count twice)."""
        out: Counter[str] = Counter()
        for (filename, _line, func), n in self.stack.items():
            for name, functions in markers.items():
                if any(func == fn and Path(filename).as_posix().endswith(suffix) for suffix, fn in functions):
                    out[name] += n
        return out
