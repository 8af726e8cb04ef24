"""The storage seam (database.py, evidence_store.py) on both engines, below the gateway: migrations,
one hash chain written by several writers, arrival numbers of a writer that died, a messageId recorded
twice, the export of a shared log and the CLI that verifies it."""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest

from mock_server import evidence_store
from mock_server.database import AlreadyRecorded, connect, migrations
from mock_server.evidence import COLUMNS, EvidenceLog, chain_head, check_chain, export_chain, verify_chain
from mock_server.store import Store

from conftest import ecdi_process

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def target(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return tmp_path / "evidence.sqlite3"


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_s_exchanges_migration_has_the_evidence_columns_in_order(engine):
    (_, _, sql), = [m for m in migrations("evidence", engine) if m[0] == 1]
    body = sql[sql.index("CREATE TABLE"):sql.index(");")]
    names = re.findall(r"^\s+([a-z_]+) ", body, re.M)
    assert names == ["pos", "seq", *COLUMNS, "prev_hash", "row_hash"]


def test_migrations_are_applied_once_and_versioned(target):
    db = connect(target, component="state")
    try:
        assert db.schema_version("state") == max(v for v, _, _ in migrations("state", db.engine))
        connect(target, component="state").close()            # a second process opening it changes nothing
        count = db.execute("SELECT COUNT(*) FROM schema_version WHERE component = 'state'").fetchone()[0]
        assert count == len(migrations("state", db.engine))
    finally:
        db.close()


def _row(case_id: str, n: int) -> dict:
    return {"case_id": case_id, "received_at": time.time(), "request_body": b"x" * n, "gateway_verdict": {"n": n},
            "response_status": 200, "clock_offset": 0.25}


def test_rows_read_back_as_written_and_the_chain_verifies(target):
    log = EvidenceLog(target)
    try:
        for n in range(5):
            log.append(log.next_seq(), **_row("c1", n))
        rows = log.rows("c1")
        assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
        assert rows[3]["request_body"] == b"xxx" and rows[3]["gateway_verdict"] == {"n": 3}
        assert verify_chain(target) == (True, None) and chain_head(target)[0] == 5
    finally:
        log.close()


def test_two_writers_on_one_database_make_one_gapless_chain(pg_url):
    """Two logs stand for two gateway processes: their rows interleave in one chain, in one order."""
    logs = [EvidenceLog(pg_url), EvidenceLog(pg_url)]

    def write(log, n):
        for i in range(n):
            log.append(log.next_seq(), **_row(f"case-{id(log)}", i))

    threads = [threading.Thread(target=write, args=(log, 40)) for log in logs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert check_chain(pg_url) == []
        assert chain_head(pg_url)[0] == 160
        assert sorted(r["seq"] for r in logs[0].rows()) == list(range(1, 161))
    finally:
        for log in logs:
            log.close()


def test_an_arrival_in_flight_elsewhere_is_not_a_gap_but_one_of_a_dead_process_is_closed(pg_url, monkeypatch):
    monkeypatch.setattr(evidence_store, "STALE_S", 0.2)
    alive, dying = EvidenceLog(pg_url), EvidenceLog(pg_url)
    try:
        alive.append(alive.next_seq(), **_row("c", 1))
        lost = dying.next_seq()                                  # arrived, never answered
        alive.append(alive.next_seq(), **_row("c", 2))
        assert check_chain(pg_url) == []                          # in flight in a live process
        dying._engine._closed.set()                               # kill -9: no heartbeat, its lock gone
        dying._engine._liveness.close()
        time.sleep(0.3)
        alive._engine.reap()                                     # (or its heartbeat did already)
        (row,) = [r for r in alive.rows() if r["seq"] == lost]
        assert "ended before answering" in row["gateway_verdict"]["no_reply"]
        assert check_chain(pg_url) == [] and chain_head(pg_url)[0] == 3
    finally:
        alive.close()


def test_a_tampered_shared_log_is_found_and_an_export_verifies_alike(pg_url, tmp_path):
    log = EvidenceLog(pg_url)
    for n in range(3):
        log.append(log.next_seq(), **_row("c", n))
    log.close()
    export = tmp_path / "export.sqlite3"
    assert export_chain(pg_url, export) == 3
    assert verify_chain(export) == (True, None) and chain_head(export) == chain_head(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE exchanges SET client = 'elsewhere' WHERE seq = 2")
        conn.execute("ALTER TABLE exchanges DISABLE TRIGGER USER")
        conn.execute("UPDATE exchanges SET client = 'elsewhere' WHERE seq = 2")
    assert verify_chain(pg_url) == (False, 2)


def test_ecdi_evidence_verify_and_export_on_a_shared_log(pg_url, tmp_path):
    log = EvidenceLog(pg_url)
    log.append(log.next_seq(), **_row("c", 1))
    log.close()

    def ecdi(*args):
        return ecdi_process("evidence", *args)

    verified = ecdi("verify", pg_url)
    assert verified.returncode == 0 and "OK:" in verified.stdout and "1 rows" in verified.stdout, verified.stderr
    out = tmp_path / "e.sqlite3"
    assert ecdi("export", pg_url, str(out)).returncode == 0
    assert ecdi("verify", str(out)).returncode == 0
    again = ecdi("export", pg_url, str(out))
    assert again.returncode == 2 and "exists" in again.stderr
    away = ecdi("verify", pg_url.replace("port=", "port=1"))
    assert away.returncode == 2 and away.stderr.count("\n") == 1 and "cannot reach" in away.stderr


def test_the_same_message_id_recorded_by_two_stores_is_recorded_once(target):
    stores = [Store(target if isinstance(target, str) else target.with_name("state.sqlite3")) for _ in range(2)]

    def record(store, text):
        return store.record(message_id="m-1", case_id="c", user_id="u", header={}, request_text=b"r",
                            received_at=0.0, script=[], pending_queries=0, make_entry1=lambda rn: ("29", text))

    try:
        assert record(stores[0], b"first").text == b"first"
        with pytest.raises(AlreadyRecorded):
            record(stores[1], b"second")
        assert [e.text for e in stores[1].entries("m-1")] == [b"first"]
        assert stores[1].next_number("reception") == 3_000_000_002      # the loser's number was rolled back
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("url, says", [("sqlite:///x", "must be a postgresql:// URL"),
                                       ("postgresql://postgres@/none?host=/nonexistent&port=1", "cannot reach")])
def test_ecdi_gateway_names_a_bad_database_in_one_line(url, says, tmp_path):
    done = ecdi_process("gateway", "--database", url, "--port", "0", "--dir", tmp_path, timeout=120)
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_a_database_url_is_shown_without_its_password():
    from mock_server.database import describe

    assert describe("postgresql://ecdi:s3cr%40t@db:5432/ecdi") == "postgresql://ecdi:***@db:5432/ecdi"
    assert describe("postgresql://ecdi@db/ecdi") == "postgresql://ecdi@db/ecdi"
