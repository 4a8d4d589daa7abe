"""TCP probe: connect to one address under test, from the vantage."""

from __future__ import annotations

import socket
import time

from probes import base


async def connect(ctx: base.ProbeContext, ip: str, port: int) -> tuple[base.TcpObservation, socket.socket | None]:
    """Return the observation and, on success, the connected socket (the caller owns it)."""
    start = time.monotonic()
    try:
        sock = await ctx.dialer.connect(ip, port, ctx.timeouts.connect)
    except base.DialError as exc:
        return base.TcpObservation(ip, port, exc.failure, _ms(start), exc.error), None
    return base.TcpObservation(ip, port, None, _ms(start)), sock


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)
