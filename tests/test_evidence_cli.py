"""``ecdi evidence verify`` and evidence durability across a gateway restart."""

from __future__ import annotations

import sqlite3

from conformance.cli import main
from conformance.pki import TestPKI
from mock_server import Account, GatewayConfig, run_in_thread
from mock_server.evidence import chain_head, verify_chain
from test_gateway import PASSWORD, USER, Client, parse_reply


def _gateway(pki, folder):
    return run_in_thread(GatewayConfig(
        profiles=["ecdi-1.0"], pki_folder=pki.folder, evidence_db=folder / "evidence.sqlite3", time_scale=0.01,
        accounts=[Account(USER, PASSWORD, [pki.tax_code])], registered_certs={pki.tax_code: [pki.declarant.cert]}))


def test_a_restart_on_the_same_database_loses_nothing(pki_dir, tmp_path):
    pki = TestPKI.ensure(pki_dir)
    first = _gateway(pki, tmp_path)
    client = Client(first, pki)
    text = client.message()
    _, entry1 = client.send(text)
    client.post(b"not soap")
    first.stop()
    before = chain_head(first.evidence_db)
    assert before[0] == 2

    second = _gateway(pki, tmp_path)
    try:
        client = Client(second, pki)
        _, again = client.send(text)                      # the recorded submission survived (REL-12)
        assert again == entry1
        assert parse_reply(client.send(client.message())[1])[0].function == "29"
    finally:
        second.stop()
    rows, _ = chain_head(second.evidence_db)
    assert rows == 4 and verify_chain(second.evidence_db) == (True, None)
    conn = sqlite3.connect(second.evidence_db)
    assert [r[0] for r in conn.execute("SELECT seq FROM exchanges ORDER BY pos")] == [1, 2, 3, 4]
    conn.close()


def test_evidence_verify_names_the_first_tampered_row(pki_dir, tmp_path, capsys):
    pki = TestPKI.ensure(pki_dir)
    running = _gateway(pki, tmp_path)
    client = Client(running, pki)
    for _ in range(3):
        client.send(client.message())
    running.stop()
    db = str(running.evidence_db)
    assert main(["evidence", "verify", db]) == 0
    assert "OK" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER exchanges_no_update")
        conn.execute("UPDATE exchanges SET user_id = 'someone-else' WHERE seq = 2")
    assert main(["evidence", "verify", db]) == 1
    assert "seq=2" in capsys.readouterr().out


def test_evidence_verify_of_a_missing_or_foreign_file_is_a_clear_error(tmp_path, capsys):
    assert main(["evidence", "verify", str(tmp_path / "nope.sqlite3")]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    assert main(["evidence", "verify", str(other)]) == 2
    assert "not a gateway evidence log" in capsys.readouterr().err
