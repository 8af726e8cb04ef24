"""No secret of a run at rest in what is shared: every file a run and a standalone gateway write for sharing
(report, results, certificate, evidence bundle; the gateway's evidence log and its WAL) and every control
API listing is searched — as written, in UTF-16LE and inside base64 runs — for each password, OTP and
private key of the run. Private material stays in ``OUT/work/`` and the gateway's data folder."""

from __future__ import annotations

import base64
import binascii
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import requests

from conformance.codec import soap
from conformance.codec.fingerprint import Fingerprinter, new_key
from conformance.report.outputs import OUTPUTS

from conftest import SELFTEST_SCALE, SELFTEST_SEED, run_budget

CASES = ("payment.expired-otp-renewed", "transport.credentials-only-in-body", "security.no-clear-text-secrets")
SHARED = ("results.json", "report.html", "junit.xml", "certificate.html", "certificate.pdf", "certificate-issuer.pub.pem",
          "certificate-issuer.crt.pem", "evidence")   # the PDF's claim is the HTML's, scanned there uncompressed

# Runs ``ecdi run`` in this process and notes the secrets the harness and its gateway make (never written
# by the product code: the test learns them by wrapping the functions that make them).
RECORDING_RUN = """
import json, sys
from conformance import harness
from mock_server import payments
found, note = {"passwords": [], "otps": []}, sys.argv[1]
def dump():
    open(note, "w").write(json.dumps(found))
start, issue, lanes = harness.Harness.start, payments.Payments.issue_otp, harness.Harness.open_lanes
def recording_start(self):
    start(self); found["passwords"] += list(self.passwords.values()); dump()
def recording_lanes(self, cases):
    opened = lanes(self, cases); found["passwords"] += list(self.passwords.values()); dump(); return opened
def recording_issue(self, *args, **kwargs):
    otp = issue(self, *args, **kwargs); found["otps"].append(otp.value); dump(); return otp
harness.Harness.start, payments.Payments.issue_otp = recording_start, recording_issue
harness.Harness.open_lanes = recording_lanes          # each lane's accounts have passwords of their own
from conformance.cli import main
sys.exit(main(sys.argv[2:]))
"""

_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def _decoded_runs(data: bytes) -> list[bytes]:
    out = []
    for run in _B64_RUN.findall(data):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            for cut in range(4):      # a run may start inside a quantum
                chunk = run[cut:]
                try:
                    out.append(decode(chunk + b"=" * (-len(chunk) % 4)))
                except (binascii.Error, ValueError):
                    pass
    return out


def _hits(data: bytes, needles: dict[str, list[re.Pattern]]) -> list[str]:
    views = [data, *_decoded_runs(data)]
    return sorted({name for name, patterns in needles.items() for view in views for p in patterns if p.search(view)})


def _patterns(value: str, *, digits: bool = False) -> list[re.Pattern]:
    forms = [value.encode("utf-8"), value.encode("utf-16-le")]
    if digits:      # an OTP: six digits standing alone, not part of a longer number, hash or fraction
        return [re.compile(rb"(?<![0-9A-Za-z.])" + re.escape(f) + rb"(?![0-9A-Za-z])") for f in forms[:1]]
    return [re.compile(re.escape(f)) for f in forms]


def _key_needles(folder: Path) -> dict[str, list[re.Pattern]]:
    """Every private key under ``folder``: its PEM body's lines and its DER, and the PKCS#12 password."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    needles: dict[str, list[re.Pattern]] = {}
    keys = []
    for path in folder.rglob("*"):
        if path.is_file() and b"PRIVATE KEY-----" in path.read_bytes():
            keys.append((path.name, serialization.load_pem_private_key(path.read_bytes(), password=None)))
    meta = json.loads((folder / "pki.json").read_text()) if (folder / "pki.json").exists() else {}
    if meta.get("p12_password"):
        needles["PKCS#12 password"] = _patterns(meta["p12_password"])
        for p12 in folder.rglob("*.p12"):
            try:
                key, _, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), meta["p12_password"].encode())
            except ValueError:
                continue
            keys.append((p12.name, key))
    for name, key in keys:
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        body = base64.b64encode(der)[16:80]           # a stretch of the PEM body
        needles[f"private key {name}"] = [re.compile(re.escape(der[-48:])), re.compile(re.escape(body))]
    return needles


def _leaks(files: list[Path], needles: dict[str, list[re.Pattern]]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        hits = _hits(path.read_bytes(), needles)
        if hits:
            found[str(path)] = hits
    return found


@pytest.mark.long
@pytest.mark.timeout(420)
def test_a_run_shares_no_password_otp_or_private_key(tmp_path, pki_dir):
    out, note = tmp_path / "out", tmp_path / "secrets.json"
    cmd = [sys.executable, "-c", RECORDING_RUN, str(note), "run", "--sut", "reference", "--out", str(out),
           "--time-scale", SELFTEST_SCALE, "--seed", SELFTEST_SEED, "--pki-dir", str(pki_dir)]
    proc = subprocess.run([*cmd, *(a for c in CASES for a in ("--case", c))], capture_output=True, text=True,
                          timeout=run_budget())
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {c["id"]: c["verdict"] for c in results["cases"]} == dict.fromkeys(CASES, "PASS"), \
        proc.stdout[-3000:] + proc.stderr[-3000:]
    made = json.loads(note.read_text())
    assert made["passwords"] and made["otps"], made
    needles = {**{f"password {p}": _patterns(p) for p in made["passwords"]},
               **{f"OTP {o}": _patterns(o, digits=True) for o in made["otps"]},
               **_key_needles(pki_dir), **_key_needles(out / "work" / "issuer")}
    shared = [f for name in SHARED for f in ([out / name] if (out / name).is_file() else (out / name).rglob("*"))
              if f.is_file()]
    assert any(f.name == "evidence.sqlite3" for f in shared) and any(f.parent.name == "cases" for f in shared)
    assert _leaks(shared, needles) == {}
    assert not any(name.startswith("work/") and name not in ("work/dts", "work/gateway") for name in OUTPUTS)
    private = out / "work"
    assert (private / "gateway" / "state.sqlite3").exists()
    assert not (out / "evidence" / "evidence-state.sqlite3").exists()
    assert "PRIVATE - do not share" in (private / "README.txt").read_text(encoding="utf-8")
    otps = {name: patterns for name, patterns in needles.items() if name.startswith("OTP")}
    assert _leaks(list((private / "gateway").glob("state.sqlite3*")), otps) == {}    # the store: fingerprints


def _gateway(tmp_path: Path, pki_dir: Path, password: str):
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "gateway", "--port", "0", "--pki-dir",
                             str(pki_dir), "--dir", str(tmp_path / "gw"), "--password", password,
                             "--time-scale", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not lines or not lines[-1].startswith("ready"):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines.append(line.strip())
    return proc, "\n".join(lines)


def test_a_standalone_gateway_keeps_passwords_only_as_fingerprints(tmp_path, pki_dir):
    password, wrong = "Gw-" + new_key().hex()[:20], "Wrong-" + new_key().hex()[:20]
    proc, text = _gateway(tmp_path, pki_dir, password)
    try:
        assert f"data folder (private: test PKI keys, state): {tmp_path / 'gw'}" in text
        endpoint = re.search(r"endpoint \(cgw_endpoint\): (\S+)", text).group(1)
        ca = re.search(r"TLS trust anchor to import \(test CA\): (\S+)", text).group(1)
        control, token = re.search(r"control API: (\S+)  token: (\S+)", text).groups()
        session = requests.Session()
        session.trust_env = False
        basic = base64.b64encode(f"nguoikhai:{password}".encode()).decode()
        for pw, headers, url in ((password, {}, endpoint), (wrong, {}, endpoint),
                                 (password, {"Authorization": f"Basic {basic}"}, endpoint),
                                 (password, {"Cookie": f"pw={password}"}, f"{endpoint}?password={password}")):
            body = soap.send_request_body(b"<Envelope/>", "nguoikhai", pw)
            session.post(url, data=body, verify=ca, timeout=10,
                         headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION, **headers})
        listing = session.get(f"{control}/exchanges", params={"all": "1"}, verify=ca, timeout=10,
                              headers={"X-ECDI-Control": token}).content
        session.close()
        needles = {"password": _patterns(password), "wrong password": _patterns(wrong)}
        assert _hits(listing, needles) == []
        rows = json.loads(listing)["exchanges"]
        verdicts = [r["gateway_verdict"].get("credentials") for r in rows if r["method"] == "POST"]
        assert [(v or {}).get("password_matches_account") for v in verdicts] == [True, False, True, True], rows
        running = [f for f in (tmp_path / "gw").glob("evidence.sqlite3*") if f.is_file()]
        assert any(f.name.endswith("-wal") for f in running)
        assert _leaks(running, needles) == {}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert _leaks([f for f in (tmp_path / "gw").glob("evidence.sqlite3*") if f.is_file()], needles) == {}


def test_fingerprints_keep_what_trn11_and_replay_compare():
    fp = Fingerprinter(new_key())
    body = soap.send_request_body(b"<e:Envelope><p:otp>012345</p:otp></e:Envelope>", "u", "pa&ss")
    redacted, found = fp.elements(body)
    assert found == ["pa&ss", "012345"] and b"pa&amp;ss" not in redacted and b"012345" not in redacted
    assert fp(fp("pa&ss")) == fp("pa&ss") != Fingerprinter(new_key())("pa&ss")
    assert fp.elements(redacted) == (redacted, [])                       # redacting twice changes nothing
    assert soap.parse_send_request(redacted)[0].password == fp("pa&ss")
    basic = "Basic " + base64.b64encode(b"u:pa&ss").decode()
    assert base64.b64decode(fp.header(basic, ["pa&ss"]).split()[1]) == f"u:{fp('pa&ss')}".encode()
    assert fp.text("OTP 012345, order 90123456", ["012345"]) == f"OTP {fp('012345')}, order 90123456"
    assert fp.text("len 1234, ab123, pw=123", ["123"]) == f"len 1234, ab123, pw={fp('123')}"   # short: whole words


def test_a_tape_keeps_secrets_as_fingerprints_and_a_replay_reads_them_as_they_are():
    from conformance.tape import Tape

    fp = Fingerprinter(new_key())
    tape = Tape(fingerprint=fp, secrets=["cgw-Pw-1"])
    tape.keep_secret("654321")
    tape.add({"op": "journal", "result": [{"messageText": "<e:Envelope><p:otp>654321</p:otp></e:Envelope>"},
                                          {"text": "Connected as u / cgw-Pw-1; OTP 654321; no 7654321"}]})
    tape.add({"op": "perform", "action": {"otp": "654321"}})
    text = json.dumps(tape.events)
    assert "654321" not in text.replace("7654321", "") and "cgw-Pw-1" not in text
    assert tape.events[1]["action"]["otp"] == fp("654321") and "no 7654321" in text
    replayed = Tape(tape.events)
    replayed.add({"op": "perform", "action": {"otp": fp("654321")}})
    assert replayed.events[-1] == tape.events[1]


_PIECES = st.sampled_from([b"<", b"&lt;", b"&gt;", b">", b"</", b"&lt;/", b"Password", b"otp", b"svc:", b"e:", b"a.b-c:",
                           b" x=\"1\"", b"secret", b"123456", b"&amp;lt;", b":", b" ", b"\n",
                           b"<svc:Password>pw</svc:Password>", b"&lt;e:otp&gt;123456&lt;/e:otp&gt;", b"<otp>1</otp>",
                           b"&lt;Password x=\"&amp;\"&gt;p&lt;/Password &gt;"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_redaction_finds_exactly_what_the_patterns_find(data):
    """The scan anchored at the element names (fast over a large message text) replaces exactly what
    the patterns themselves would."""
    from conformance.codec import fingerprint
    fp = Fingerprinter(new_key())
    expected, found = data, []
    for name in fingerprint.SECRET_ELEMENTS:
        for pattern in fingerprint._PATTERNS[name]:
            expected = pattern.sub(lambda m: m.group(1) + b"#" + m.group(3), expected)
    marked = fp.elements(data)[0]
    assert fingerprint.MARKER.sub("#", marked.decode("utf-8", "replace")) == expected.decode("utf-8", "replace")


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join), st.lists(st.sampled_from(["secret", "123456", "pw", "p", "secret12",
                                                                               "x=\"1\"", "lt;"]), max_size=3))
def test_values_are_replaced_where_they_stand_in_the_original_octets(data, values):
    """Each value's occurrences (whole words if short) in the original octets, longer values first and none
    overlapping one replaced already, become its fingerprint; every occurrence is replaced at least in part.
    (Found once on the original, as a worker does ahead, not one substitution after another: a marker's
    brackets never make a new word boundary.)"""
    from conformance.codec import fingerprint
    fp = Fingerprinter(new_key())
    kept: list = []
    for value in fingerprint._ordered(values):
        for m in re.finditer(fingerprint._bounded(value).encode(), data):
            if not any(k[0] < m.end() and m.start() < k[1] for k in kept):
                kept.append((m.start(), m.end(), value))
    expected, pos = b"", 0
    for start, end, value in sorted(kept):
        expected, pos = expected + data[pos:start] + fp(value).encode(), end
    assert fp.octets(data, values) == expected + data[pos:]
    for value in values:
        assert all(any(k[0] < m.end() and m.start() < k[1] for k in kept)
                   for m in re.finditer(fingerprint._bounded(value).encode(), data))


def test_the_worker_finds_the_secrets_the_evidence_writer_replaces():
    """The spans a CPU worker finds in a Send (redaction.find_secrets, carried by the row) redact it as a
    scan of the row would: the password element, the OTP escaped in the message text, another account's
    password elsewhere."""
    from mock_server import pipeline
    from mock_server.accepted import AcceptedProfiles
    from mock_server.redaction import SECRETS, redact_row

    text = b"<e:Envelope><p:otp>012345</p:otp><note>other-Pw-9 and 012345</note></e:Envelope>"
    body = soap.send_request_body(text, "u", "pa&ss")
    known = ["other-Pw-9", "pa&ss"]
    found = pipeline.portable_preparation(AcceptedProfiles(["ecdi-1.0"]), body, known)["_secrets"]
    assert set(found.values) == {"pa&ss", "012345", "other-Pw-9"} and len(found.body[1]) == 4 and len(found.text[1]) == 3
    fp = Fingerprinter(new_key())
    row = {"request_body": body, "message_text": text, "path": "/ecdi", "request_headers": {}}
    ahead = redact_row(fp, {**row, SECRETS: found}, known)
    assert ahead == redact_row(fp, row, known) and SECRETS not in ahead
    assert not any(s.encode() in ahead["request_body"] + ahead["message_text"] for s in ("pa&amp;ss", "012345", "other-Pw-9"))
    assert redact_row(fp, {**row, SECRETS: found}, [*known, "new-Pw-1"]) == redact_row(fp, row, [*known, "new-Pw-1"])
