"""What a held request keeps (issue 14): the gateway's memory with N requests waiting out a ``delay``.

``python benchmarks/bench_held.py [N] [--trace]`` starts the benchmark's gateway (``peers.py gateway``) in a
process of its own, holds N distinct signed declarations (default 1,000) with a delay scenario, and prints
its RSS per held request (at the plateau, from ``/proc``) and its peak; ``--trace`` runs the gateway under
``tracemalloc`` and prints the allocation sites that grew between 0 and N held (slower: use N ≤ 1,000).
``benchmarks/run.py`` (part "held") gives the table's figure for 5,000.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
from run import Bodies, load, rss_kb  # noqa: E402

from conformance.gateway_control import GatewayControl  # noqa: E402
from conformance.pki import TestPKI  # noqa: E402

TRACED = """
import os, signal, sys, tracemalloc
sys.path.insert(0, sys.argv[3])
tracemalloc.start(1)
snapshots = iter(range(2))
signal.signal(signal.SIGUSR1, lambda *_: tracemalloc.take_snapshot().dump(f"{sys.argv[4]}.{next(snapshots)}"))
import peers
peers._serve_gateway(sys.argv[1], sys.argv[2])
"""


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count, trace = int(args[0]) if args else 1000, "--trace" in sys.argv
    work = Path(tempfile.mkdtemp(prefix="bench-held-"))
    pki = TestPKI.ensure(work / "pki")
    pool = Bodies(pki).write(work / "bodies.pickle", count)
    rate = 40.0 if trace else 120.0
    delay = count / rate * 2 + 20
    command = ([sys.executable, "-c", TRACED, str(pki.folder), str(work / "gw"), str(Path(__file__).parent),
                str(work / "snapshot")] if trace else [sys.executable, str(Path(__file__).with_name("peers.py")),
                                                      "gateway", str(pki.folder), str(work / "gw")])
    gateway = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=work,
                               stderr=(work / "gateway.log").open("wb"))     # (cwd: -c puts it on sys.path)
    info = json.loads(gateway.stdout.readline())
    pid, baseline = info["pid"], rss_kb(info["pid"])[0]
    control = GatewayControl(info["control"], token=info["token"], ca_pem=pki.tls_ca_pem)
    control.begin_case("held", {"name": "held", "rules": [{"when": {"type": "929", "function": "8"},
                                                              "then": {"action": "delay", "seconds": delay}}]})
    if trace:
        os.kill(pid, signal.SIGUSR1)
    result: dict = {}
    sender = threading.Thread(target=lambda: result.update(load(
        info["url"], pool, pki, concurrency=count, unique=True, start_rate=rate, ends=True, timeout=delay * 3 + 60)))
    sender.start()
    time.sleep(count / rate)              # (no listing of the requests in flight: it grows the heap itself)
    while sender.is_alive() and len(os.listdir(f"/proc/{pid}/fd")) < count:    # a loaded machine: not all yet
        time.sleep(1.0)
    previous, plateau = -1, rss_kb(pid)[0]
    while sender.is_alive() and plateau - previous > 512:    # KiB: until every request arrived and it settled
        time.sleep(3.0)
        previous, plateau = plateau, rss_kb(pid)[0]
    if trace:
        os.kill(pid, signal.SIGUSR1)
    sender.join()
    peak = rss_kb(pid)[1]
    control.close()
    gateway.stdin.close()
    gateway.wait(60)
    print(f"{count} held ({result.get('statuses')}): RSS {baseline // 1024} MB before, {plateau // 1024} MB held "
          f"({(plateau - baseline) / count:.1f} KB each), peak {peak // 1024} MB ({(peak - baseline) / count:.1f} KB each)")
    if trace:
        grown = tracemalloc.Snapshot.load(f"{work}/snapshot.1").compare_to(
            tracemalloc.Snapshot.load(f"{work}/snapshot.0"), "lineno")
        print(f"Python allocations grown: {sum(s.size_diff for s in grown) / 1024 / count:.1f} KB per held request")
        for stat in grown[:25]:
            frame = stat.traceback[0]
            print(f"{stat.size_diff / 1024 / count:7.2f} KB {stat.count_diff / count:6.1f} objects  "
                  f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
