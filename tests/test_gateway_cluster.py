"""Several gateway processes on one PostgreSQL (issue 17): what one process recorded or was told is what
every other one sees; behind HAProxy (the sample configuration) a whole reference session is CONFORMANT
with one evidence chain; a process killed under load loses no answered exchange; a database restart is
an overloaded CGW (TRN-08) until it is back, without a gap in the chain afterwards."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests

from conformance.codec import soap
from conformance.codec.envelope import new_message_id
from conformance.gateway_control import GatewayControl
from conformance.pki import TestPKI
from mock_server.evidence import check_chain, chain_head

from gateway_cluster import PASSWORD, TOKEN, USER, Balanced, GatewayProcess, Unavailable, free_port
from conftest import cluster_or_skip, ecdi_process
from test_gateway import Client, parse_reply

pytestmark = pytest.mark.xdist_group("gateway-cluster")     # heavy: one worker runs these one after another
# Twice the self-tests' 0.05: five processes (two gateways and their CPU workers, HAProxy, PostgreSQL) beside the
# other test workers on two cores; at 0.05 a loaded machine made the reference DTS give up on attempts (T_send 3 s)
SCALE = 0.1


@pytest.fixture(scope="module")
def pki(pki_dir) -> TestPKI:
    return TestPKI.ensure(pki_dir)


@pytest.fixture(scope="module")
def cluster():
    """A cluster of this module's own (one test restarts it, cleanly: fsync off loses nothing then)."""
    pg = cluster_or_skip()
    yield pg
    pg.remove()


@pytest.fixture(scope="module")
def balanced(cluster, pki, tmp_path_factory):
    try:
        lb = Balanced(cluster.create_database(), pki.folder, tmp_path_factory.mktemp("cluster"), time_scale=SCALE)
    except Unavailable as exc:
        pytest.skip(str(exc))
    yield lb
    lb.stop()


def client_of(url: str, pki) -> Client:
    return Client(SimpleNamespace(endpoint_url=url + soap.ENDPOINT_PATH), pki)


def control_of(url: str, pki, session: str | None = None) -> GatewayControl:
    return GatewayControl(url + "/_control", token=TOKEN, ca_pem=pki.tls_ca_pem, session=session)


def test_a_message_id_sent_to_two_processes_at_once_is_one_submission(balanced, pki):
    one, two = (client_of(gw.url, pki) for gw in balanced.gateways)
    texts = [one.message() for _ in range(6)]
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda job: answered(*job), [(c, t) for t in texts for c in (one, two)]))
    for first, second in zip(replies[::2], replies[1::2]):
        assert first == second                                 # byte-identical entry 1 (REL-10)
        assert parse_reply(first)[0].function == "29"
    with requests_for_db(balanced) as db:
        count = db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
    assert count >= 6 and len({parse_reply(r)[1].reception_number for r in replies}) == 6


def test_polling_one_process_finds_the_history_another_recorded(balanced, pki):
    one, two = (client_of(gw.url, pki) for gw in balanced.gateways)
    text = one.message()
    _, reply = one.send(text)
    submission = parse_reply(reply)[0]["Subject/reference"]      # the submission's messageId
    deadline, functions = time.monotonic() + 20, []
    while time.monotonic() < deadline and "35" not in functions:
        after = len(functions) + 1
        client = (one, two)[after % 2]                        # the queries alternate between the processes
        _, answer = client.send(client.query(submission, after))
        header, result = parse_reply(answer)
        assert header.function in ("12", "30", "10", "32", "35"), result.errors
        if header.function != "12":
            functions.append(header.function)
        time.sleep(4 * SCALE + 0.1)                           # over T_poll_min (4 s at s = 1, REL-15)
    assert functions == ["30", "10", "32", "35"]


def test_a_session_s_scenario_clock_and_rule_counts_are_every_process_s(balanced, pki):
    a, b = (gw.url for gw in balanced.gateways)
    session, user = new_session(a, pki, "reject-once", {"rules": [
        {"when": {"type": "929"}, "times": 1, "then": {"action": "reply", "function": "271",
                                                        "errors": [{"code": "U0002"}]}}]})
    on_b, on_a = client_of(b, pki), client_of(a, pki)
    first = parse_reply(on_b.send(on_b.message(), user=user)[1])[0].function
    second = parse_reply(on_a.send(on_a.message(), user=user)[1])[0].function
    assert (first, second) == ("271", "29")                  # the rule fired once across both processes
    control_of(b, pki, session).advance_clock(3600)
    assert control_of(a, pki, session).clock()["offset"] == 3600
    rows = control_of(a, pki, session).exchanges("reject-once")
    assert [r.reply_function for r in rows] == ["271", "29"]


def test_a_hold_in_one_process_ends_when_the_case_ends_through_another(balanced, pki):
    a, b = (gw.url for gw in balanced.gateways)
    session, user = new_session(a, pki, "held", {"rules": [{"when": {}, "then": {"action": "hold"}}]})
    on_b = client_of(b, pki)
    ended = []

    def send():
        try:
            on_b.post(soap.send_request_body(on_b.message(), user, PASSWORD))
        except requests.RequestException:
            pass
        ended.append(time.monotonic())

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.5)
    assert not ended                                      # held by process b
    control_of(a, pki, session).begin_case("next", {})
    begun = time.monotonic()
    sender.join(10)
    assert ended and ended[0] - begun < 3                 # released without any further request to b


@pytest.mark.timeout(600)
def test_a_reference_session_through_the_balancer_is_conformant_and_one_chain(balanced, run_ecdi, tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    run = run_ecdi(tmp_path / "run", "--shared-gateway", balanced.url, "--control-token-file", str(token),
                   "--time-scale", str(SCALE))
    assert run.returncode == 0 and run.results["overall"] == "CONFORMANT", run.explain()
    assert check_chain(balanced.database) == []
    with requests_for_db(balanced) as db:      # both processes answered the run's exchanges
        served = {row[0] for row in db.execute("SELECT gateway_verdict::jsonb ->> 'served_by' FROM exchanges")}
    assert len(served - {None}) == 2, served
    checked = ecdi_process("evidence", "verify", run.out / "evidence" / "evidence.sqlite3")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_kill_9_of_one_process_under_load_loses_no_answered_exchange(cluster, pki, tmp_path):
    lb = Balanced(cluster.create_database(), pki.folder, tmp_path, time_scale=SCALE)
    try:
        client = client_of(lb.url, pki)
        answered: list[tuple[str, bytes]] = []
        failures: list[str] = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                text = client.message()
                try:
                    response = client.post(soap.send_request_body(text, USER, PASSWORD))
                except requests.RequestException as exc:
                    failures.append(type(exc).__name__)
                    continue
                if response.status_code == 200:
                    answered.append((_message_id(text), soap.parse_send_response(response.content)))
                else:
                    failures.append(str(response.status_code))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(3)
        before = len(answered)
        lb.gateways[1].kill()
        time.sleep(4)
        stop.set()
        for w in workers:
            w.join(30)
        assert before > 0 and len(answered) > before + 5, (before, len(answered), failures[:5])   # kept serving
        with requests_for_db(lb) as db:
            for message_id, reply in answered:
                row = db.execute("SELECT text FROM entries WHERE message_id = %s AND sequence = 1",
                                 (message_id,)).fetchone()
                assert row is not None and bytes(row[0]) == reply, message_id
                assert db.execute("SELECT COUNT(*) FROM exchanges WHERE message_id = %s AND response_status = 200",
                                  (message_id,)).fetchone()[0] >= 1
        # the survivor closes the dead process's open arrivals once its heartbeat is stale; until then those
        # numbers count as a live process's in flight, so an empty check_chain alone says nothing yet
        deadline = time.monotonic() + 30
        while (check_chain(lb.database) or open_arrivals_of(lb)) and time.monotonic() < deadline:
            time.sleep(0.5)
        with requests_for_db(lb) as db:            # what a failure needs to be understood
            state = (db.execute("SELECT seq, process_id FROM arrivals").fetchall(),
                     db.execute("SELECT process_id, EXTRACT(EPOCH FROM clock_timestamp()) - heartbeat_at"
                                " FROM gateway_processes").fetchall())
        assert check_chain(lb.database) == [], state
    finally:
        lb.stop()


def test_a_database_restart_is_an_overloaded_gateway_then_the_chain_resumes(cluster, pki, tmp_path):
    url = cluster.create_database()
    gw = GatewayProcess(url, pki.folder, tmp_path / "gw", free_port(), None, SCALE)
    try:
        gw.wait_ready()
        client = client_of(gw.url, pki)
        assert parse_reply(client.send(client.message())[1])[0].function == "29"
        cluster.stop()
        try:
            response = client.post(soap.send_request_body(client.message(), USER, PASSWORD))
            assert response.status_code == 503 and 1 <= int(response.headers["Retry-After"]) <= 300   # TRN-08
        finally:
            cluster.start()
        deadline, status = time.monotonic() + 20, None
        while status != 200 and time.monotonic() < deadline:
            status = client.post(soap.send_request_body(client.message(), USER, PASSWORD)).status_code
            time.sleep(0.2)
        assert status == 200
        deadline = time.monotonic() + 10
        while check_chain(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert check_chain(url) == []
        rows = chain_head(url)[0]
        assert rows >= 3                          # the 503's row was deferred and written once it was back
        verified = ecdi_process("evidence", "verify", url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        gw.stop()


def new_session(url: str, pki, case_id: str, scenario: dict) -> tuple[str, str]:
    """A session of its own (its UserId new) created through ``url``, in case ``case_id``: (session, UserId)."""
    session = "s-" + new_message_id()[:8]
    user = "khach." + session[-8:]
    control_of(url, pki).create_session(session, [{"user_id": user, "password": PASSWORD, "tax_codes": [pki.tax_code]}])
    control_of(url, pki, session).begin_case(case_id, scenario)
    return session, user


def answered(client: Client, text: bytes, tries: int = 5) -> bytes:
    """The reply to ``text``, sent again after a 503 as a DTS does (TRN-08: a loaded machine may be one)."""
    for _ in range(tries):
        response = client.post(soap.send_request_body(text, USER, PASSWORD))
        if response.status_code != 503:
            assert response.status_code == 200, response.text
            return soap.parse_send_response(response.content)
        time.sleep(int(response.headers["Retry-After"]))
    raise AssertionError(f"503 {tries} times")


def _message_id(text: bytes) -> str:
    from conformance.codec import safexml
    from conformance.codec.envelope import read_header

    return read_header(safexml.parse_message_text(text))["Reference/messageId"]


def open_arrivals_of(lb) -> int:
    with requests_for_db(lb) as db:
        return db.execute("SELECT count(*) FROM arrivals").fetchone()[0]


class requests_for_db:
    """A psycopg connection to the cluster's database, as a context manager."""

    def __init__(self, lb):
        self._url = lb.database

    def __enter__(self):
        import psycopg
        self._conn = psycopg.connect(self._url, autocommit=True)
        return self._conn

    def __exit__(self, *exc):
        self._conn.close()


def test_a_database_restart_under_load_on_two_processes_leaves_one_whole_chain(cluster, pki, tmp_path):
    lb = Balanced(cluster.create_database(), pki.folder, tmp_path, time_scale=SCALE)
    try:
        client = client_of(lb.url, pki)
        statuses: list[tuple[float, int | str]] = []
        answered: list[tuple[str, bytes]] = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                text = client.message()
                try:
                    response = client.post(soap.send_request_body(text, USER, PASSWORD))
                except requests.RequestException as exc:
                    statuses.append((time.monotonic(), type(exc).__name__))
                    continue
                statuses.append((time.monotonic(), response.status_code))
                if response.status_code == 200:
                    answered.append((_message_id(text), soap.parse_send_response(response.content)))
                time.sleep(0.05)

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(2)
        cluster.stop()
        down = time.monotonic()
        time.sleep(2)
        cluster.start()
        up = time.monotonic()
        time.sleep(4)
        stop.set()
        for w in workers:
            w.join(30)
        during = [s for t, s in statuses if down + 0.5 < t < up]
        assert during and set(during) <= {503}, set(during)          # an overloaded CGW while it was away
        assert [s for t, s in statuses if t > up + 3][-3:] == [200] * 3    # then serving again
        deadline = time.monotonic() + 30
        while check_chain(lb.database) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert check_chain(lb.database) == []                         # the 503s' rows too, without a gap
        with requests_for_db(lb) as db:
            for message_id, reply in answered:
                row = db.execute("SELECT text FROM entries WHERE message_id = %s AND sequence = 1",
                                 (message_id,)).fetchone()
                assert row is not None and bytes(row[0]) == reply, message_id
            unavailable = db.execute("SELECT COUNT(*) FROM exchanges WHERE response_status = 503").fetchone()[0]
        assert unavailable >= len(during)              # every 503 sent has its row
    finally:
        lb.stop()
