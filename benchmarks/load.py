"""The benchmark's load client: a process of its own, so that its CPU is not the gateway's.

Reads pre-built request bodies (``bodies.pickle``: a list of SOAP bodies, signed beforehand) and POSTs
them over keep-alive HTTPS with ``--concurrency`` requests in flight; with ``--unique`` each body is
sent once (distinct declarations: a repeated messageId would be a cheap retransmission), else they
cycle. ``--start-rate`` spreads the first request of each worker over time (held connections: every
worker opens its own connection and its request waits out a ``delay``). Prints one JSON line:
requests, statuses, rate, latency percentiles, each request's end time, the client's own CPU seconds.

    python benchmarks/load.py URL --bodies FILE --concurrency 16 --duration 10 [--ca PEM] [--unique]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import resource
import ssl
import sys
import time

import aiohttp

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:ecdi:service:1#Send"'}


def _small_tls_buffers() -> None:
    """asyncio gives every TLS connection a 256 KiB read buffer; thousands of them would make this
    client, not the server, the machine's memory hog (see docs/performance.md)."""
    import asyncio.sslproto as sslproto
    sslproto.SSLProtocol.max_size = 64 * 1024


async def _run(args, bodies: list[bytes]) -> dict:
    ctx = ssl.create_default_context(cafile=args.ca) if args.ca else None
    connector = aiohttp.TCPConnector(limit=args.concurrency, ssl=ctx if ctx else False, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    ends: list[float] = []
    errors: list[str] = []
    next_body = 0
    deadline = time.perf_counter() + args.duration if args.duration else None
    began = time.perf_counter()

    def take() -> bytes | None:
        nonlocal next_body
        if args.unique and next_body >= len(bodies):
            return None
        if args.max and next_body >= args.max:
            return None
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        body = bodies[next_body % len(bodies)]
        next_body += 1
        return body

    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=SOAP_HEADERS) as session:
        async def worker(index: int) -> None:
            if args.start_rate:
                await asyncio.sleep(index / args.start_rate)
            while (body := take()) is not None:
                started = time.perf_counter()
                try:
                    async with session.post(args.url, data=body) as response:
                        await response.read()
                        key = str(response.status)
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    key = type(exc).__name__
                    if len(errors) < 5:
                        errors.append(f"{type(exc).__name__}: {exc}")
                statuses[key] = statuses.get(key, 0) + 1
                latencies.append(time.perf_counter() - started)
                ends.append(time.perf_counter() - began)

        await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else None

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"requests": len(latencies), "statuses": statuses, "seconds": round(elapsed, 3),
            "rate": round(statuses.get("200", 0) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "min_ms": pct(0.0), "errors": errors,
            "ends": [round(e, 3) for e in ends] if args.ends else None,
            "client_cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--bodies", required=True, help="pickle of a list of request bodies (bytes)")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--duration", type=float, default=0.0, help="seconds (0: until the bodies or --max run out)")
    ap.add_argument("--max", type=int, default=0, help="at most this many requests")
    ap.add_argument("--unique", action="store_true", help="send each body at most once")
    ap.add_argument("--start-rate", type=float, default=0.0, help="workers started per second (0: all at once)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--ca", help="CA certificate (PEM) the server's TLS certificate chains to")
    ap.add_argument("--ends", action="store_true", help="list each request's end time")
    args = ap.parse_args()
    _small_tls_buffers()
    with open(args.bodies, "rb") as f:
        bodies = pickle.load(f)
    print(json.dumps(asyncio.run(_run(args, bodies))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
