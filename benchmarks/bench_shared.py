"""The shared gateway's figure (issue 17): accepted signed declarations per second with 1 and 2 ``ecdi gateway``
processes on one PostgreSQL (2 behind HAProxy, the sample configuration), beside one process on SQLite (the
embedded default). Every process is started the same way (``ecdi gateway``, time scale 1, a cluster with
fsync on), and the same load client sends distinct pre-signed declarations (``load.py``).

    python benchmarks/run.py --postgresql [--skip ...]     # an optional part of the benchmark command
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests")]

from gateway_cluster import PASSWORD, USER, Balanced, GatewayProcess, Unavailable, free_port  # noqa: E402
from pgcluster import Unavailable as PgUnavailable, start_cluster  # noqa: E402

from conformance.codec import soap  # noqa: E402

SECTION = "shared gateway (issue 17)"


def shared(table, work: Path, pki, bodies_cls, load, levels, seconds: float, rate_note) -> None:
    bodies = bodies_cls(pki, user=USER, password=PASSWORD)
    try:
        cluster = start_cluster(durable=True)
    except PgUnavailable as exc:
        table.add(SECTION, "PostgreSQL", "skipped", str(exc))
        return
    try:
        setups = [("SQLite, 1 process", None, 1), ("PostgreSQL, 1 process", cluster, 1),
                  ("PostgreSQL, 2 processes + HAProxy", cluster, 2)]
        for name, pg, count in setups:
            folder = work / "shared" / name.split(",")[0].lower() / str(count)
            try:
                url, stop = _start(pg, pki, folder, count)
            except (Unavailable, RuntimeError) as exc:
                table.add(SECTION, name, "skipped", str(exc)[:200])
                continue
            try:
                for c in levels:
                    pool = bodies.write(work / f"shared-bodies-{count}-{c}.pickle", max(c * 4, int(seconds * 400)))
                    result = load(url + soap.ENDPOINT_PATH, pool, pki, concurrency=c, duration=seconds, unique=True)
                    table.add(SECTION, f"{name}: accepted 929/s at c={c}", f"{result['rate']:.0f}/s", rate_note(result))
            finally:
                stop()
    finally:
        cluster.remove()


def _start(pg, pki, folder: Path, count: int):
    """(URL, stop) of ``count`` gateway processes: on SQLite (``pg`` None, one process) or on a fresh database."""
    if count == 1:
        gw = GatewayProcess(pg.create_database() if pg else None, pki.folder, folder, free_port(), None, 1.0)
        try:
            gw.wait_ready()
        except BaseException:
            gw.stop()
            raise
        return gw.url, gw.stop
    lb = Balanced(pg.create_database(), pki.folder, folder, time_scale=1.0)
    return lb.url, lb.stop
