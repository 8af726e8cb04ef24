"""The cases' only handle on the mock gateway: its control API, over HTTPS (docs/contracts.md).

Cases never import ``mock_server``; they set a scenario with ``begin_case`` and read what the
gateway observed with ``exchanges``. Going over HTTP (not in-process calls) keeps that seam honest:
the same client works against a gateway in another process or on another machine.

Control API (JSON; every call carries the ``X-ECDI-Control`` token):

=====================================  ==========================================================
``GET  /_control/info``                ``{endpoint_url, wsdl_url, crl_url, case_id, accepted_versions, time_scale}``
``POST /_control/cases``               ``{case_id, scenario}`` -> ``{case_id, scenario: name}``; 400 ``{error}``
``GET  /_control/exchanges?case_id=``  ``{case_id, exchanges: [row...]}`` (bytes as base64)
``GET  /_control/exchanges?all=1``     every case's exchanges of the session so far (the campaign, ENV-02)
``GET  /_control/clock``               ``{offset, now}``
``POST /_control/clock/advance``       ``{seconds}`` -> ``{offset, now}``
``GET  /_control/evidence/verify``     ``{ok, first_bad_row}``
``GET  /_control/evidence/slice?sessions=a,b``  ``{first_pos, prev_hash, head_hash, rows, pending}`` (a shared
                                       gateway's chain from those sessions' first row to their last)
``POST /_control/lag``                 ``{windows: [[t0, t1]...]}`` -> ``{worst_s: [...]}`` (event-loop lag, conformance/lag.py)
``GET  /_control/mailbox?tax_code=&payment_order_id=``  ``{messages: [mail...]}`` (OTP e-mails, PAY-04)
``GET  /_control/live?after=&mail_after=``  ``{exchanges: [summary...], mail: [...], now}`` (the live page's feed)
``POST /_control/sessions``            ``{session_id, accounts: [{user_id, password, tax_codes}], certificates?,
                                       fingerprint_key?}`` -> ``{session_id, user_ids}``
``GET  /_control/sessions``            ``{sessions: [{session_id, user_ids, case_id, clock_offset}]}``
``POST /_control/prompts``             ``{case_id, name, question?, instruction?, choices? | pattern?, timeout_s}`` -> prompt
                                       (no question: a notice, shown but not answerable)
``GET  /_control/prompts?status=``     ``{prompts: [prompt...]}`` (``status``: open, answered, expired, withdrawn)
``GET  /_control/prompts/<id>``        prompt: the fields posted and ``{prompt_id, created_at, deadline,
                                       seconds_left, status, answer, operator, answered_at, evidence_seq}``
``POST /_control/prompts/<id>/answer`` ``{answer, operator}`` -> prompt; 400 not allowed, 404, 409 closed/late
``POST /_control/prompts/<id>/withdraw``  -> prompt (the harness no longer needs it)
=====================================  ==========================================================

Prompts carry the manual driver's questions to an operator who watches the live page
(``/live?token=``) instead of a terminal; an accepted answer is also an evidence row (operator
attestation) and is never listed by ``/exchanges``, which lists what the product exchanged.

Every call except ``/sessions`` acts on one session: the one named by the ``X-ECDI-Session`` header,
or the default session (the gateway's configured accounts) without it. Sessions isolate scenario,
case, clock, mailbox and the exchanges listed; a request belongs to the session of its SOAP UserId.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path

import requests

from .remote import RemoteFailure, call, excerpt

CONTROL_HEADER = "X-ECDI-Control"
SESSION_HEADER = "X-ECDI-Session"
# A campaign's exchanges, bodies in base64, can be large; beyond this the answer is refused (issue 13)
MAX_CONTROL_ANSWER_BYTES = 1024 * 2**20
_BYTES_FIELDS = ("request_body", "message_text", "response_body", "reply_text")


class ControlError(RuntimeError):
    """The control API refused a call or could not be reached."""


class ScenarioRefused(ControlError, ValueError):
    """The gateway found the scenario invalid; the message names the offending key or action."""


@dataclass
class Exchange:
    """One exchange as the gateway recorded it (an evidence row)."""

    seq: int
    case_id: str
    received_at: float                 # real epoch seconds
    responded_at: float | None         # None while the response is still held back (in flight)
    client: str
    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytes
    message_text: bytes | None
    user_id: str | None
    message_id: str | None
    type: str | None
    function: str | None
    reference: str | None
    attempt: int                       # n-th reception of this messageId (1 = first; 0 = none readable)
    response_status: int | None
    response_headers: dict[str, str]
    response_body: bytes
    reply_text: bytes | None
    reply_function: str | None
    reply_codes: list[str]
    rule: str | None                   # scenario rule that fired
    gateway_verdict: dict              # {"steps_passed", "failed_step", "signature", "certificate", ...}
    clock_offset: float = 0.0          # the gateway clock's offset (advance_clock) at that moment
    # the request's connection (REL-01 attempt start, REL-06 end of attempt); None from an older gateway
    connection_accepted_at: float | None = None
    tls_started_at: float | None = None
    tls_finished_at: float | None = None
    connection_request: int | None = None      # n-th request on its connection (1: a new connection)
    connection_closed_at: float | None = None  # closed before the gateway wrote the row (e.g. the client gave up)
    extra: dict = field(default_factory=dict)   # columns a newer gateway adds

    @classmethod
    def from_json(cls, row: dict) -> "Exchange":
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in row.items() if k in known}
        for name in _BYTES_FIELDS:
            if values.get(name) is not None:
                values[name] = base64.b64decode(values[name])
        # An exchange still in flight (its response held back) has no response yet: empty values.
        for name, empty in (("request_body", b""), ("response_body", b""), ("request_headers", {}),
                            ("response_headers", {}), ("reply_codes", []), ("gateway_verdict", {}),
                            ("attempt", 0), ("clock_offset", 0.0)):
            if values.get(name) is None:
                values[name] = empty
        for name in known:
            values.setdefault(name, None)
        return cls(**values, extra={k: v for k, v in row.items() if k not in known})


class GatewayControl:
    def __init__(self, control_url: str, *, token: str, ca_pem: Path | str, timeout: float = 30.0,
                 session: str | None = None):
        self.control_url = control_url.rstrip("/")
        self.session = session             # None: the default session
        self._session = requests.Session()
        # Not trust_env: REQUESTS_CA_BUNDLE would silently replace our CA (requests prefers it over
        # Session.verify), and a proxy from the environment has no business between us and the gateway.
        self._session.trust_env = False
        self._session.headers[CONTROL_HEADER] = token
        if session is not None:
            self._session.headers[SESSION_HEADER] = session
        self._token = token
        self._ca_pem = str(ca_pem)
        self._timeout = timeout
        self._lock = threading.Lock()      # one call at a time: a lane's thread and the report may share a client
        info = self._call("GET", "/info")
        self.endpoint_url: str = info["endpoint_url"]
        self.wsdl_url: str = info["wsdl_url"]
        self.crl_url: str = info["crl_url"]
        self.accepted_versions: list[str] = info["accepted_versions"]
        self.time_scale: float | None = info.get("time_scale")

    def begin_case(self, case_id: str, scenario: dict) -> None:
        """Make ``scenario`` active and label every following exchange with ``case_id``.

        Raises ScenarioRefused with the gateway's explanation if the scenario is invalid.
        """
        self._call("POST", "/cases", json={"case_id": case_id, "scenario": scenario})

    def exchanges(self, case_id: str | None = None) -> list[Exchange]:
        """The exchanges recorded for ``case_id`` (default: the current case), in arrival order."""
        params = {"case_id": case_id} if case_id is not None else None
        return [Exchange.from_json(r) for r in self._call("GET", "/exchanges", params=params)["exchanges"]]

    def campaign_exchanges(self) -> list[Exchange]:
        """Every exchange of this session so far, all cases together, in arrival order (ENV-02: the
        harness checks messageId uniqueness over the whole test campaign)."""
        return [Exchange.from_json(r) for r in self._call("GET", "/exchanges", params={"all": "1"})["exchanges"]]

    def advance_clock(self, seconds: float) -> None:
        """Move the gateway's clock forward by ``seconds`` (§2.1: certificate validity, T_age_max)."""
        self._call("POST", "/clock/advance", json={"seconds": seconds})

    def clock(self) -> dict:
        """``{"offset": seconds, "now": ISO time}`` of the gateway clock."""
        return self._call("GET", "/clock")

    def verify_evidence(self) -> tuple[bool, int | None]:
        """Check the evidence hash chain: (ok, first row not as recorded)."""
        result = self._call("GET", "/evidence/verify")
        return result["ok"], result["first_bad_row"]

    def evidence_slice(self, sessions: list[str]) -> dict:
        """The slice of the gateway's chain holding ``sessions``' rows (mock_server/evidence_slice.py), octets
        in base64, with ``pending``: those sessions' rows not committed yet."""
        return self._call("GET", "/evidence/slice", params={"sessions": ",".join(sessions)})

    def lag(self, windows: list[list[float]]) -> list[float]:
        """The gateway event loop's largest lateness overlapping each window (epoch seconds)."""
        return self._call("POST", "/lag", json={"windows": windows})["worst_s"]

    def mailbox(self, *, tax_code: str | None = None, payment_order_id: str | None = None) -> list[dict]:
        """The OTP e-mails the gateway sent (PAY-04), oldest first: ``{seq, sent_at, sender, to, subject,
        body, tax_code, payment_order_id, otp, expires_at}``."""
        params = {k: v for k, v in (("tax_code", tax_code), ("payment_order_id", payment_order_id)) if v}
        return self._call("GET", "/mailbox", params=params or None)["messages"]

    def latest_otp(self, payment_order_id: str) -> str:
        """The OTP of the order's most recent e-mail (what the user would type); ControlError if none."""
        mails = self.mailbox(payment_order_id=payment_order_id)
        if not mails:
            raise ControlError(f"no OTP e-mail for payment order {payment_order_id}")
        return mails[-1]["otp"]

    def create_session(self, session_id: str, accounts: list[dict], **shared) -> "GatewayControl":
        """Create an isolated session for ``accounts`` (``{user_id, password, tax_codes}``, UserIds new
        to the gateway) and return a client bound to it. ControlError names a bad key. A run on a shared
        gateway also gives ``certificates`` (``{tax_code: [PEM]}``, registered) and ``fingerprint_key`` (hex)."""
        self._call("POST", "/sessions", json={"session_id": session_id, "accounts": accounts, **shared})
        return GatewayControl(self.control_url, token=self._token, ca_pem=self._ca_pem, timeout=self._timeout,
                              session=session_id)

    def sessions(self) -> list[dict]:
        return self._call("GET", "/sessions")["sessions"]

    # --- operator prompts: the manual driver's questions, answered on the live page ---------------
    def post_prompt(self, case_id: str, name: str, question: str, *, timeout_s: float, instruction: str = "",
                    choices: tuple[str, ...] | list[str] = (), pattern: str | None = None) -> dict:
        """Open a prompt on the live page; the gateway closes it at ``timeout_s`` (real seconds)."""
        body = {"case_id": case_id, "name": name, "question": question, "instruction": instruction,
                "choices": list(choices), "timeout_s": timeout_s}
        if pattern is not None:
            body["pattern"] = pattern
        return self._call("POST", "/prompts", json=body)

    def withdraw_prompt(self, prompt_id: str) -> dict:
        return self._call("POST", f"/prompts/{prompt_id}/withdraw")

    def prompt(self, prompt_id: str) -> dict:
        """A prompt as it stands: ``status`` open/answered/expired/withdrawn, ``answer`` once answered."""
        return self._call("GET", f"/prompts/{prompt_id}")

    def prompts(self, status: str | None = None) -> list[dict]:
        return self._call("GET", "/prompts", params={"status": status} if status else None)["prompts"]

    def answer_prompt(self, prompt_id: str, answer: str, operator: str) -> dict:
        """What the live page's form does; ControlError says why an answer was refused."""
        return self._call("POST", f"/prompts/{prompt_id}/answer", json={"answer": answer, "operator": operator})

    def live_page_url(self) -> str:
        """The operator's live page, with the control token it needs (as ``ecdi gateway`` prints it)."""
        url = self.control_url.rsplit("/_control", 1)[0] + f"/live?token={self._token}"
        return url + (f"&session={self.session}" if self.session else "")

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        """The JSON object the control API answers; ControlError naming the call, the URL and the cause
        for anything else (``remote.call``: timeouts, resets, 5xx, redirects, non-JSON, oversized)."""
        where = f"gateway control API, {method} {path} ({self.control_url}{path})"
        try:
            with self._lock:
                answer = call(self._session, method, self.control_url + path, where=where, timeout=self._timeout,
                              peer="the gateway control API", verify=self._ca_pem, ok_statuses=(200,),
                              max_bytes=MAX_CONTROL_ANSWER_BYTES, **kwargs)
            data = answer.json(where)
        except RemoteFailure as failure:
            if failure.status == 400 and path == "/cases":
                raise ScenarioRefused(_error_of(failure.body) or "scenario refused") from None
            error = _error_of(failure.body) if failure.status is not None and 400 <= failure.status < 500 else None
            raise ControlError(f"{where}: HTTP {failure.status}: {error}" if error else str(failure)) from None
        if not isinstance(data, dict):
            raise ControlError(f"{where}: the answer is not a JSON object: {excerpt(answer.body)}")
        return data


def _error_of(body: bytes) -> str | None:
    """The control API's ``{"error": ...}`` explanation in a refusal, if it holds one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return str(data["error"]) if isinstance(data, dict) and "error" in data else None
