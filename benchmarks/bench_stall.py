"""No request stalls another (issue 13, item 1): a well-behaved client's latency while a second client
keeps sending CPU-heavy requests (message texts nested as deep as S_max allows, about a second each of
parsing and validation in the gateway's worker processes).

Target: the well-behaved client's p99 latency under that load within 2 × its idle p99. Run:
``python benchmarks/bench_stall.py [requests]`` (default 100 per phase). The test
``tests/test_hostile_connections.py`` asserts only that others are served meanwhile.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_gateway import Client, gateway_config  # noqa: E402
from test_hostile_connections import deep_text  # noqa: E402

from conformance.pki import TestPKI  # noqa: E402
from mock_server import run_in_thread  # noqa: E402

TARGET_RATIO = 2.0


def latencies(client: Client, count: int) -> list[float]:
    out = []
    for _ in range(count):
        text = client.message()
        started = time.perf_counter()
        client.send(text)
        out.append(time.perf_counter() - started)
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    folder = Path(tempfile.mkdtemp(prefix="bench-stall-"))
    pki = TestPKI.ensure(folder / "pki")
    running = run_in_thread(gateway_config(pki, folder, time_scale=1.0))
    try:
        client, hostile = Client(running, pki), Client(running, pki)
        latencies(client, 10)                                     # warm-up
        idle = latencies(client, count)
        text, stop, heavy = deep_text(client), threading.Event(), []

        def keep_sending() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                hostile.send(text)
                heavy.append(time.perf_counter() - started)
        worker = threading.Thread(target=keep_sending, daemon=True)
        worker.start()
        time.sleep(0.5)
        loaded = latencies(client, count)
        stop.set()
        worker.join()
    finally:
        running.stop()
    ratio = p99(loaded) / p99(idle)
    print(f"idle p99 {p99(idle) * 1000:.1f} ms (median {statistics.median(idle) * 1000:.1f} ms)")
    print(f"under hostile load p99 {p99(loaded) * 1000:.1f} ms (median {statistics.median(loaded) * 1000:.1f} ms), "
          f"{len(heavy)} hostile requests answered meanwhile, {statistics.mean(heavy):.2f} s each")
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO})  {'ok' if ratio <= TARGET_RATIO else 'SLOW'}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
