"""Carrying out a ``faults.Delivery`` on a real socket (aiohttp).

The plan is decided in ``faults``; this module only knows how to do each thing for real, because a
DTS must meet real transport failures (libraries.md: aiohttp is the one server measured that can):

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


async def transmit(request: web.Request, *, status: int, body: bytes, headers: dict,
                   delivery: Delivery) -> tuple[dict, web.StreamResponse | None]:
    """Send the response as ``delivery`` says; returns delivery facts for the evidence row and the
    response object (None when nothing was sent).

    Raises ``ConnectionError`` if the client went away during a normal delivery.
    """
    if delivery.delay:
        await asyncio.sleep(delivery.delay)
    mode = delivery.mode
    if mode == "reset":
        reset(request)
        return {"delivered": False, "mode": mode, "sent_bytes": 0}, None
    if mode == "hold":
        await _until_released(delivery.release)
        reset(request)
        return {"delivered": False, "mode": mode, "sent_bytes": 0}, None
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    if mode == "stall":
        await _until_released(delivery.release)
        reset(request)
        return {"delivered": False, "mode": mode, "sent_bytes": 0, "headers_sent": True}, response
    if mode == "truncate":
        sent = body[: delivery.keep_bytes]
        await response.write(sent)
        await _drain(request)
        request.transport.close()
        return {"delivered": False, "mode": mode, "sent_bytes": len(sent), "content_length": len(body)}, response
    if mode == "drip":
        for start in range(0, len(body), delivery.chunk_bytes):
            await response.write(body[start:start + delivery.chunk_bytes])
            await asyncio.sleep(delivery.interval_s)
    else:
        await response.write(body)
    await response.write_eof()
    return {"delivered": True, "mode": mode, "sent_bytes": len(body)}, response


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
