"""Carrying out a ``faults.Delivery`` on a real socket (aiohttp).

The plan is decided in ``faults``; this module only knows how to do each thing for real, because a
DTS must meet real transport failures (libraries.md: aiohttp is the one server measured that can).
The evidence row is committed before ``transmit`` runs (app.py), so it records ``planned`` facts:
what the gateway is about to do, not what the client managed to read. ``delay`` is waited by the
caller before it commits the row.

* ``reset`` — SO_LINGER 0 then ``transport.abort()``: the kernel sends a TCP RST, not a FIN.
* ``hold`` — nothing is sent until the case ends (or the gateway stops), then the connection closes.
* ``stall`` — status line and headers (with the full ``Content-Length``) are sent, then nothing.
* ``truncate`` — headers announce the full length, ``keep_bytes`` of the body are sent, then the
  connection closes: the body is shorter than its ``Content-Length`` (REL-03).
* ``drip`` — the body is sent ``chunk_bytes`` at a time, ``interval_s`` apart.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

from aiohttp import web

from .faults import Delivery

POLL_S = 0.02      # how often a held connection checks whether its case has ended


WITHHELD = ("hold", "stall")   # modes whose response never completes: no ``responded_at``


def planned(delivery: Delivery, body: bytes) -> dict:
    """The delivery facts known before anything is sent, for the evidence row: whether the whole
    response is to be sent (``delivered``) and, for a fault, what reaches the client."""
    mode = delivery.mode
    if mode == "normal":
        return {"delivered": True}
    facts = {"delivered": mode == "drip", "mode": mode,
             "sent_bytes": {"truncate": len(body[: delivery.keep_bytes]), "drip": len(body)}.get(mode, 0)}
    if mode == "stall":
        facts["headers_sent"] = True
    if mode == "truncate":
        facts["content_length"] = len(body)
    return facts


async def transmit(request: web.Request, *, status: int, body: bytes, headers: dict,
                   delivery: Delivery) -> web.StreamResponse | None:
    """Send the response as ``delivery`` says (its ``delay`` already waited); returns the response
    object (None when nothing was sent).

    Raises ``ConnectionError`` if the client went away during a normal delivery.
    """
    mode = delivery.mode
    if mode == "reset":
        reset(request)
        return None
    if mode == "hold":
        await _until_released(delivery.release)
        reset(request)
        return None
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    if mode == "stall":
        await _until_released(delivery.release)
        reset(request)
        return response
    if mode == "truncate":
        await response.write(body[: delivery.keep_bytes])
        await _drain(request)
        request.transport.close()
        return response
    if mode == "drip":
        for start in range(0, len(body), delivery.chunk_bytes):
            await response.write(body[start:start + delivery.chunk_bytes])
            await asyncio.sleep(delivery.interval_s)
    else:
        await response.write(body)
    await response.write_eof()
    return response


def reset(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER on, timeout 0)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def _drain(request: web.Request) -> None:
    """Let the TLS layer flush what was written before the connection is closed."""
    await asyncio.sleep(0.05)


async def _until_released(release: threading.Event | None) -> None:
    while release is None or not release.is_set():
        await asyncio.sleep(POLL_S)
