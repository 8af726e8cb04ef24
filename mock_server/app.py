"""The mock customs gateway as an HTTPS server (aiohttp), and the thread that runs it.

Routes:
* ``POST /ecdi/CISService`` — the ECDI ``Send`` operation, evaluated by ``pipeline.evaluate``.
* ``GET /ecdi/CISService?wsdl`` — Annex D with ``{cgw_endpoint}`` filled in (TRN-02).
* ``GET /crl/<name>`` — the CRL files the gateway holds (a DTS checks them before signing, SIG-12).
* ``GET /live`` — the operator's live page (static; it polls ``/_control/live``).
* ``/_control/…`` — the control API of ``conformance.gateway_control`` (JSON, ``X-ECDI-Control``),
  including the operator prompts of the manual driver (prompts.py) that the live page answers.
* anything else — 404 (405 for other methods on the endpoint).

Every exchange except control calls becomes one evidence row, committed *before* the first octet
of its response leaves (after a scenario ``delay``): nothing is delivered without its row, so the
row records what the gateway is about to send and how (the delivery plan, transmit.planned), and
``responded_at`` is when it starts sending it — None when the response is withheld (``hold``,
``stall``) or none was sent (the client went away first: the row says ``no_reply`` and why). Until
then the exchange is "in flight": listed by the control API with its response fields empty. A row
that cannot be committed within ``evidence_busy_timeout`` turns the answer into an overloaded CGW's
503 + ``Retry-After`` (TRN-08), whose own row is deferred until the file accepts writes again
(evidence.py; docs/decisions.md "No reply without evidence").

One control call is recorded too: an operator's accepted answer to a prompt, as an operator
attestation (who, when, what) in the same hash chain, so the operator's word is as tamper-evident
as the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import ssl
import stat
import sys
import threading
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from cryptography import x509

from conformance.codec import certs, soap
from conformance.codec.fingerprint import Fingerprinter, new_key
from conformance.pki import DEFAULT_TAX_CODE, TestPKI

from . import pipeline
from .clock import Clock
from .connections import OpenConnections, connection_of, tracked_tls, watch_handshakes
from .config import TEST_CERTIFICATION_ID, Account, GatewayConfig
from .database import StorageUnavailable
from .evidence import COLUMNS, EvidenceLog, EvidenceUnavailable, verify_chain
from .evidence_slice import export_slice
from . import faults
from .faults import Delivery
from .mailbox import Mailbox
from .payments import Payments
from .prompts import PromptError
from .redaction import SECRETS, redact_row, set_aside
from .spool import SPOOL_DELAY_S, Spool, Spooled
from .sessions import DEFAULT as DEFAULT_SESSION
from .sessions import SESSION_ID, SHARED_SESSION_KEYS, Session, SessionView, shared_session_extras
from .shared_sessions import SharedSessions
from .accepted import AcceptedProfiles, accepted_profiles, version_key  # noqa: F401 — accepted_profiles re-exported
from .cpu_pool import CpuPool
from .transmit import WITHHELD, planned, transmit
from .replies import GatewayIdentity, Replies, reply_summary
from .scenario import CaseState, ScenarioError, parse_scenario
from .store import Store
from conformance.lag import LagSamples, watch_loop

log = logging.getLogger("mock_server")

CONTROL_PREFIX = "/_control"
CONTROL_HEADER = "X-ECDI-Control"
SESSION_HEADER = "X-ECDI-Session"
USER_ID = re.compile(r"[A-Za-z0-9._@-]{1,50}")
TAX_CODE = re.compile(r"[0-9]{10}(-[0-9]{3})?")
WSDL_TEMPLATE = (Path(__file__).with_name("wsdl.xml")).read_text(encoding="utf-8")
_CRL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.crl")
_ARRIVAL: contextvars.ContextVar[int | None] = contextvars.ContextVar("ecdi_arrival", default=None)  # its seq
_BYTES_FIELDS = ("request_body", "message_text", "response_body", "reply_text")
XML_CONTENT_TYPE = "text/xml"
LIVE_PAGE = (Path(__file__).parent / "static" / "live.html").read_bytes()
OVERLOADED_BODY = b"503 Service Unavailable: the gateway could not record this exchange; retry later"
BUSY_BODY = b"503 Service Unavailable: the gateway is evaluating as many requests as it can; retry later"
RETRY_AFTER_S = 1                  # TRN-08 allows 1-300 s; §2.1: Retry-After values are not scaled
_LIVE_FIELDS = ("seq", "case_id", "received_at", "responded_at", "client", "method", "path", "user_id", "type",
                "function", "reference", "message_id", "attempt", "response_status", "reply_function", "reply_codes",
                "rule")


class Gateway:
    """One gateway: its configuration, trust material, recorded state and current case.

    The pipeline steps read everything they need from this object (``gw``); nothing in it depends
    on aiohttp, so it can be driven without a server.
    """

    def __init__(self, config: GatewayConfig):
        if config.pki_folder is None or (config.evidence_db is None and config.database is None):
            raise ValueError("GatewayConfig needs pki_folder and evidence_db (or database)")
        self.config = config
        self.time_scale = config.time_scale
        self.enforce_poll_interval = config.enforce_poll_interval
        self.poll_interval_allowance = config.poll_interval_allowance
        self.behaviour = config.behaviour
        accepted = AcceptedProfiles(config.profiles)
        self.profiles, self.default_profile = accepted.profiles, accepted.default_profile
        loaded = list(self.profiles.values())
        self.pki = _load_pki(Path(config.pki_folder))
        self.trust_anchors = certs.load_pem_chain(self.pki.trust_list_pem)
        self.known_intermediates = [self.pki.declarant_ca]
        registered = config.registered_certs
        if registered is None:
            registered = {self.pki.tax_code: [self.pki.declarant.cert]}
        self.registered = {tax: {(c.issuer, c.serial_number) for c in cs} for tax, cs in registered.items()}
        self.accounts = {a.user_id: a for a in config.accounts}
        self.certified_products = {TEST_CERTIFICATION_ID, *config.certified_products}
        # Result codes of every accepted profile (X0005 and G0007 exist only in 1.1, W0001 only in 1.0).
        result_codes = {code: rc for p in loaded for code, rc in p.result_codes.items()}
        self._descriptions = {code: rc.description_vi for code, rc in result_codes.items()}
        self.code_replies = {code: rc.functions for code, rc in result_codes.items()}
        self._signer = self.pki.gateway_signer.signer()
        self._identity = GatewayIdentity(config.product, config.product_version, config.operator_name,
                                         config.operator_tax_code, self.default_profile.deployment["central_office"],
                                         tuple(sorted(self.profiles, key=version_key)))
        if config.database is None:
            Path(config.evidence_db).parent.mkdir(parents=True, exist_ok=True)
            config.state_path().parent.mkdir(parents=True, exist_ok=True)
        # passwords and OTPs are kept as keyed fingerprints (redaction.py); the key lives in memory only
        self.fingerprint = Fingerprinter(config.fingerprint_key or new_key())
        self.evidence = EvidenceLog(config.evidence_target(), busy_timeout=config.evidence_busy_timeout,
                                    redact=self.redacted)
        # The campaign (``/exchanges?all=1``) is this gateway run's: an evidence log reused by a later run
        # keeps the earlier run's rows, which are another campaign's.
        # Shared (a database): every process's campaign is its sessions' rows whenever they were written.
        self._campaign_after = 0 if config.database else self.evidence.last_seq   # (not every row read)
        self.store = Store(config.state_target())
        # several processes on one database see one set of sessions (shared_sessions.py); None: this process's own
        self.shared = SharedSessions(self.store.connection) if config.database else None
        self._case_versions: dict[str, int] = {}   # session -> the shared case version it runs
        self.sessions: dict[str, Session] = {}
        self._new_session(DEFAULT_SESSION, set(self.accounts))
        if self.shared is not None:
            self.shared.create(DEFAULT_SESSION, None)
            self.sync_sessions()
        # octets of requests waiting out a delay, in a private folder: beside the state, or of its own when
        # the state is in a database and no file was named
        self._spool = Spool(config.state_path().parent / "held" if config.database is None or config.evidence_db
                            else Path(tempfile.mkdtemp(prefix="ecdi-held-")))
        self.payments = Payments(self.store.connection, self.store.transaction)
        self.control_token = config.control_token or secrets.token_urlsafe(24)
        self.base_url = ""                     # https://host:port, set once the server is bound
        self._crl_cache: dict[Path, tuple[int, x509.CertificateRevocationList]] = {}
        self._open: dict[int, dict] = {}       # seq -> evidence fields so far, of every arrival without its row
        self._in_flight: dict[int, dict] = {}  # those being answered: listed by the control API
        self.lag = LagSamples()                # this gateway's event-loop lateness (conformance/lag.py)
        # pipeline.prepare's CPU work, in worker processes so that no request stalls another (issue 13)
        self._cpu = CpuPool(config.profiles, config.cpu_workers, config.cpu_budget)
        self._evaluating = 0                  # Send requests in evaluation now (behaviour.capacity, TRN-08)
        self._cpu_waits: set[asyncio.Future] = set()   # cancelled when the gateway stops
        self.cpu_budget = config.cpu_budget

    def redacted(self, row: dict) -> dict:
        """Evidence fields with every password and OTP as its fingerprint (stored and listed so), under the
        key of the row's session if it brought one."""
        return redact_row(self._fingerprint_of((row.get("gateway_verdict") or {}).get("session")), row,
                          self._passwords())

    def _fingerprint_of(self, session_id: str | None) -> Fingerprinter:
        """The key a session's secrets are fingerprinted under: its own if it brought one (a run on a shared
        gateway matches them to its tapes), else the gateway's."""
        session = self.sessions.get(session_id or DEFAULT_SESSION)
        return getattr(session, "fingerprint", None) or self.fingerprint

    def _passwords(self) -> list[str]:
        return [a.password for a in list(self.accounts.values())]

    # --- sessions (sessions.py) ---------------------------------------------------------------
    def _new_session(self, session_id: str, user_ids: set[str]) -> Session:
        clock = Clock()
        session = Session(session_id, user_ids, clock, Replies(self._signer, clock, self._identity, self.describe,
                                                               self.behaviour.reply_signature,
                                                               self.behaviour.reply_header_values,
                                                               self.behaviour.result_code_always))
        if self.shared is not None:
            session.mailbox = self.shared.mailbox(session_id)
        self.sessions[session_id] = session
        return session

    def _adopt_session(self, data: dict) -> Session:
        """Create the session a create-session body describes (validated: ValueError names the problem)."""
        session_id, accounts = _parse_session(data, self.sessions, self.accounts)
        certificates, key = shared_session_extras(data)
        for account in accounts:
            self.accounts[account.user_id] = account
        for tax_code, found in certificates.items():    # SIG-11: registered out of band, for every session
            self.registered.setdefault(tax_code, set()).update(found)
        session = self._new_session(session_id, {a.user_id for a in accounts})
        session.fingerprint = key
        return session

    def _begin_case(self, session: Session, case_id: str, scenario, version: int | None) -> None:
        case = CaseState(case_id, scenario)
        if version is not None:                 # counted for every process (shared_sessions.py)
            case.take = self.shared.take(session.session_id, version)
            case.redeliver = self.shared.owed(session.session_id, version)
            self._case_versions[session.session_id] = version
        session.begin_case(case)

    async def watch_sessions(self, interval: float = 0.25) -> None:
        """Keep up with the shared sessions between requests too: a case begun through another process ends
        this one's ``hold`` and ``stall`` connections now, not at this process's next request."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.sync_sessions()
            except StorageUnavailable:
                pass
            except Exception:                   # noqa: BLE001 - the watch must go on
                log.exception("shared sessions")

    def sync_sessions(self) -> None:
        """Bring this process's sessions up to date with those other processes changed (a shared database);
        raises ``StorageUnavailable`` when it cannot be read."""
        if self.shared is None:
            return
        for row in self.shared.changes():
            session = self.sessions.get(row["session_id"])
            if session is None:
                try:
                    session = self._adopt_session(row["definition"])
                except ValueError as exc:       # one this process cannot take (a UserId it has for another)
                    log.error("shared session %s not taken: %s", row["session_id"], exc)
                    continue
            if row["case_version"] != self._case_versions.get(session.session_id, 0):
                self._begin_case(session, row["case_id"], parse_scenario(row["scenario"], self.code_replies),
                                 row["case_version"])
            session.clock.set_offset(row["clock_offset"])

    @property
    def default_session(self) -> Session:
        return self.sessions[DEFAULT_SESSION]

    @property
    def case(self) -> CaseState:
        return self.default_session.case

    @property
    def clock(self) -> Clock:
        return self.default_session.clock

    @property
    def mailbox(self) -> Mailbox:
        return self.default_session.mailbox

    @property
    def replies(self) -> Replies:
        return self.default_session.replies

    def session_for(self, user_id: str | None) -> Session:
        """The session a request belongs to: the one created with its UserId, else the default."""
        return next((s for s in self.sessions.values() if s.session_id != DEFAULT_SESSION and user_id in s.user_ids),
                    self.default_session)

    def end_all_cases(self) -> None:
        for session in list(self.sessions.values()):
            session.case.end()

    @property
    def endpoint_url(self) -> str:
        return self.base_url + self.behaviour.endpoint_path

    def close(self) -> None:
        self._cpu.close()
        self.evidence.close()
        self.store.close()

    # --- lookups the pipeline uses ---------------------------------------------------------
    def approval_emails(self, tax_code: str) -> list[str]:
        """PAY-04: where the OTP of ``tax_code``'s orders is e-mailed (registered out of band)."""
        return self.config.approval_emails.get(tax_code) or [f"pheduyet.{tax_code}@test.customs.example"]

    def describe(self, code: str) -> str:
        """The Vietnamese description of a result code (RPL-01), from the profiles' code lists."""
        return self._descriptions[code]

    def crls_for(self, cert: x509.Certificate) -> list[x509.CertificateRevocationList]:
        """The CRLs the gateway holds for the certificate's distribution points (SIG-10).

        Held as files in the PKI folder named like the last segment of the URL; re-read when a
        file changes (a case may revoke a certificate mid-session).
        """
        out = []
        for url in certs.crl_urls(cert):
            path = self.pki.folder / certs.crl_file_name(url)
            try:
                found = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(found.st_mode):
                continue
            mtime = found.st_mtime_ns
            cached = self._crl_cache.get(path)
            if cached is None or cached[0] != mtime:
                cached = self._crl_cache[path] = (mtime, x509.load_der_x509_crl(path.read_bytes()))
            out.append(cached[1])
        return out

    # --- the web application ----------------------------------------------------------------
    def web_app(self) -> web.Application:
        s_max = self.default_profile.params["S_max"]
        self._max_body = 4 * s_max
        app = web.Application(client_max_size=self._max_body,    # TRN-13: read bodies up to 4 × S_max
                              middlewares=[self._ends_in_a_row])
        app.router.add_post(self.behaviour.endpoint_path, self._service)     # TRN-01's seam
        app.router.add_get(self.behaviour.endpoint_path, self._wsdl)
        app.router.add_get("/crl/{name}", self._crl)
        app.router.add_get("/live", self._live_page)
        control = web.Application(middlewares=[self._control_guard])
        control.router.add_get("/info", self._control_info)
        control.router.add_post("/cases", self._control_begin_case)
        control.router.add_get("/exchanges", self._control_exchanges)
        control.router.add_get("/clock", self._control_clock)
        control.router.add_post("/clock/advance", self._control_advance_clock)
        control.router.add_get("/evidence/verify", self._control_verify)
        control.router.add_get("/evidence/slice", self._control_slice)
        control.router.add_post("/lag", self._control_lag)
        control.router.add_get("/mailbox", self._control_mailbox)
        control.router.add_get("/live", self._control_live)
        control.router.add_get("/sessions", self._control_sessions)
        control.router.add_post("/sessions", self._control_create_session)
        control.router.add_get("/prompts", self._control_prompts)
        control.router.add_post("/prompts", self._control_create_prompt)
        control.router.add_get("/prompts/{prompt_id}", self._control_prompt)
        control.router.add_post("/prompts/{prompt_id}/answer", self._control_answer_prompt)
        control.router.add_post("/prompts/{prompt_id}/withdraw", self._control_withdraw_prompt)
        app.add_subapp(CONTROL_PREFIX, control)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    def _arrive(self, request: web.Request) -> dict:
        """The evidence fields known when a request arrives, with its arrival number ``seq`` (which
        ``_ends_in_a_row`` makes sure ends in a row), and the times of its connection (connections.py;
        ``_connection`` is not a column: ``_respond`` takes it out)."""
        arrival = {"seq": self.evidence.next_seq(), "case_id": self.case.case_id, "received_at": time.time(),
                   "client": request.remote or "", "method": request.method, "path": request.path_qs,
                   "request_headers": _headers(request)}
        connection = connection_of(request.transport)
        if connection is not None:
            arrival.update(connection.next_request())
        _ARRIVAL.set(arrival["seq"])
        self._open[arrival["seq"]] = {k: v for k, v in arrival.items() if k != "seq"}
        if connection is not None:
            arrival["_connection"] = connection
        return arrival

    @web.middleware
    async def _ends_in_a_row(self, request: web.Request, handler):
        """Every arrival number ends in a row: one still open when its handler ends (it failed, was
        cancelled, or its client went away first) gets a row saying no response was sent."""
        reason = "the gateway sent no response"
        _ARRIVAL.set(None)                         # the handler's task sets it on arrival
        connection = connection_of(request.transport)
        if connection is not None:
            connection.head_read()                 # the head timer (connections.py) stops
        try:
            return await handler(request)
        except BaseException as exc:
            reason = f"the gateway stopped or failed before answering ({type(exc).__name__})"
            raise
        finally:
            if connection is not None:
                connection.request_done()
            if _ARRIVAL.get() is not None:
                self._no_reply(_ARRIVAL.get(), reason)

    async def _service(self, request: web.Request) -> web.StreamResponse:
        arrival = self._arrive(request)
        answer = await self._evaluated(request, arrival)
        if isinstance(answer, web.StreamResponse):
            return answer
        return await self._respond(request, arrival, **_handed_over(answer))

    async def _evaluated(self, request: web.Request, arrival: dict) -> dict | web.StreamResponse:
        """What ``_respond`` is to send for a Send request (its own frame ends here: a request waiting out a
        ``delay`` keeps only what ``_respond`` keeps), or the response already sent."""
        try:
            body = await self._read(request, arrival)
        except web.HTTPRequestEntityTooLarge:
            return await self._respond(request, arrival, status=413, body=b"", content_type="text/plain",
                                       verdict={"too_large": True})
        if body is None:
            return _Gone()
        read_at, started = time.time(), time.perf_counter()
        ex = pipeline.Exchange(pipeline.HttpRequest(request.path_qs, arrival["request_headers"], body), None, "")
        capacity = self.behaviour.capacity                # TRN-08's seam: Sends evaluated at once
        if capacity is not None and self._evaluating >= capacity:
            return await self._over_capacity(request, arrival, ex, read_at)
        self._evaluating += 1
        try:
            return await self._evaluate(request, arrival, ex, read_at, started)
        finally:
            self._evaluating -= 1

    async def _evaluate(self, request: web.Request, arrival: dict, ex: pipeline.Exchange, read_at: float,
                        started: float) -> dict | web.StreamResponse:
        body = ex.request.body
        in_time = await self._prepared(ex)           # parsing, validation, signature: off the event loop
        try:
            self.sync_sessions()
        except StorageUnavailable:
            pass                                     # answered 503 below: its evaluation meets the same problem
        view = SessionView(self, self.session_for(ex.call.user_id if ex.call else None))
        arrival.update(case_id=view.case.case_id, clock_offset=view.clock.offset)
        ex.now = view.clock.now() - timedelta(seconds=time.time() - read_at)   # the gateway clock at reception
        ex.case_id = arrival["case_id"]
        ex.verdict["session"] = view.session.session_id
        if arrival.get("connection_request") == 1:   # a new connection: the attempt started at its accept
            ex.started_before = max(0.0, arrival["received_at"] - arrival["connection_accepted_at"])
        try:
            response = pipeline.evaluate(view, ex) if in_time else pipeline.abandoned(view, ex)
        except StorageUnavailable as exc:      # the shared database is away: an overloaded CGW (TRN-08)
            log.error("exchange %s answered 503: %s", arrival["seq"], exc)
            ex.verdict["storage_unavailable"] = str(exc)
            return await self._respond(request, arrival, status=503, body=OVERLOADED_BODY, content_type="text/plain",
                                       request_body=body, exchange=ex, extra_headers={"Retry-After": str(RETRY_AFTER_S)})
        held = self.behaviour.reply_delay(ex.header.get("Subject/function"))
        if held:                                        # REL-02's seam: a reply held past T_cgw
            await asyncio.sleep(held * self.default_profile.timer("T_cgw", self.time_scale))
        ex.verdict["timings"] = {"evaluation_ms": round((time.perf_counter() - started) * 1000, 3)}
        content_type = XML_CONTENT_TYPE if response.status in (200, 500) else "text/plain"
        return dict(status=response.status, body=response.body, content_type=content_type, request_body=body,
                    exchange=ex, reply_text=response.reply_text, delivery=response.delivery)

    async def _over_capacity(self, request: web.Request, arrival: dict, ex: pipeline.Exchange,
                             read_at: float) -> dict | web.StreamResponse:
        """TRN-08: a Send beyond ``behaviour.capacity`` is not evaluated and not recorded; it is answered 503
        (+ Retry-After unless the behaviour's form drops it) or, read far enough to echo its header, 271 E9001."""
        form = self.behaviour.overload_answer
        ex.verdict["over_capacity"] = {"capacity": self.behaviour.capacity, "answer": form}
        if form == "E9001" and await self._prepared(ex):
            view = SessionView(self, self.session_for(ex.call.user_id if ex.call else None))
            arrival.update(case_id=view.case.case_id, clock_offset=view.clock.offset)
            ex.now, ex.case_id = view.clock.now() - timedelta(seconds=time.time() - read_at), arrival["case_id"]
            response = pipeline.abandoned(view, ex)
            return dict(status=response.status, body=response.body, content_type=XML_CONTENT_TYPE,
                        request_body=ex.request.body, exchange=ex, reply_text=response.reply_text)
        retry = {} if form == "503-without-retry-after" else {"Retry-After": str(RETRY_AFTER_S)}
        return await self._respond(request, arrival, status=503, body=BUSY_BODY, content_type="text/plain",
                                   request_body=ex.request.body, exchange=ex, extra_headers=retry)

    async def _prepared(self, ex: pipeline.Exchange) -> bool:
        """Run ``pipeline.prepare`` in a worker process (the SOAP UserId, which chooses the session, is read
        there too); False if it outlasts ``cpu_budget`` (the worker is killed; nothing recorded)."""
        work = asyncio.ensure_future(self._cpu.prepare(ex.request.body, self._passwords(), self._prepare_here))
        self._cpu_waits.add(work)
        try:
            results = await work
        finally:
            self._cpu_waits.discard(work)
        if results is None:
            ex.verdict["abandoned"] = f"parsing, validation and signature took over {self.cpu_budget:g} s (REL-02)"
            return False
        pipeline.adopt(ex, results)
        return True

    def start_workers(self) -> None:
        """Start the CPU worker processes before serving (without a server, the first request does)."""
        self._cpu.start()

    def _prepare_here(self, body: bytes, known: list[str]) -> dict:
        return pipeline.portable_preparation(self, body, known)

    def stop_cpu_waits(self) -> None:
        """Stopping: requests waiting for their CPU work end now (their rows say no response was sent)."""
        for work in list(self._cpu_waits):
            work.cancel()

    async def _wsdl(self, request: web.Request) -> web.StreamResponse:
        if "wsdl" not in (k.lower() for k in request.query):
            return await self._other(request)
        if not faults.wsdl_served(self.case):          # TRN-02: the case's scenario says "wsdl": "absent"
            return await self._respond(request, self._arrive(request), status=404, body=b"404 Not Found",
                                       content_type="text/plain", verdict={"wsdl": "absent"})
        location = self.behaviour.wsdl_location or self.endpoint_url     # TRN-02's seam
        text = WSDL_TEMPLATE.replace("{cgw_endpoint}", escape(location, {'"': "&quot;"}))
        return await self._respond(request, self._arrive(request), status=200, body=text.encode("utf-8"),
                                   content_type=XML_CONTENT_TYPE)

    async def _crl(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.pki.folder / name
        if not _CRL_NAME.fullmatch(name) or not path.is_file():
            return await self._other(request)
        return await self._respond(request, self._arrive(request), status=200, body=path.read_bytes(),
                                   content_type="application/pkix-crl")

    async def _other(self, request: web.Request) -> web.StreamResponse:
        arrival = self._arrive(request)
        body = await self._read(request, arrival)
        if body is None:
            return _Gone()
        on_endpoint = request.path == self.behaviour.endpoint_path
        return await self._respond(request, arrival, status=405 if on_endpoint else 404,
                                   body=b"405 Method Not Allowed" if on_endpoint else b"404 Not Found",
                                   content_type="text/plain", request_body=body,
                                   extra_headers={"Allow": "GET, POST"} if on_endpoint else None)

    async def _read(self, request: web.Request, arrival: dict) -> bytes | None:
        """The request body; a request whose body never arrives still ends in its row (no reply sent).
        None: it did not arrive within ``body_timeout`` (dribbled or endless), the connection is aborted."""
        timeout = self.config.body_timeout
        try:
            return await asyncio.wait_for(_body(request, self._max_body), timeout)
        except web.HTTPRequestEntityTooLarge:
            raise
        except asyncio.TimeoutError:
            self._no_reply(arrival["seq"], f"the request body did not arrive within {timeout:g} s (body_timeout)")
            request.transport.abort()
            return None
        except BaseException as exc:
            self._no_reply(arrival["seq"], f"the request could not be read ({type(exc).__name__})")
            raise

    async def _respond(self, request: web.Request, arrival: dict, *, status: int, body: bytes, content_type: str,
                       request_body: bytes = b"", exchange: pipeline.Exchange | None = None,
                       reply_text: bytes | None = None, verdict: dict | None = None,
                       extra_headers: dict | None = None, delivery: Delivery | None = None) -> web.StreamResponse:
        """Wait out the scenario ``delay``, commit the evidence row, then send the response as its
        ``Delivery`` says (transmit.py). If the row cannot be committed, answer 503 instead.

        Until the row is committed the exchange is "in flight": listed by the control API with its
        response fields empty, so a case never misses a request whose answer is being held back.
        """
        delivery = delivery or Delivery()
        headers = {"Content-Type": content_type + ("; charset=utf-8" if content_type == XML_CONTENT_TYPE else ""),
                   **(extra_headers or {}), **delivery.headers}
        verdict = exchange.verdict if exchange else dict(verdict or {})
        verdict["tls"] = _tls_facts(request)
        if self.config.database:                  # which of the processes sharing the database answered
            verdict["served_by"] = self.evidence.process_id
        row = {"clock_offset": self.clock.offset, **arrival, **_request_fields(exchange), "request_body": request_body,
               "gateway_verdict": verdict}
        seq, connection = row.pop("seq"), row.pop("_connection", None)
        self._open[seq] = self._in_flight[seq] = row
        request_body = None                        # the row has it
        if connection is not None:
            # a client giving up during a delay is noted in the row before it is committed (REL-01/06); a
            # row committed before a hold or stall does not learn of a later close (no case times those)
            connection.waiting.append(row)
        try:
            if exchange is not None and exchange.delay:
                verdict["delay_s"] = exchange.delay
            if delivery.delay:
                octets = {"response_body": body, "reply_text": reply_text}
                body = reply_text = None
                session, spool = (exchange.verdict.get("session"), True) if exchange is not None else (None, False)
                exchange = None                    # the row has what is recorded of it: nothing to keep
                await self._wait(row, delivery.delay, octets, session, spool)
                body, reply_text = octets["response_body"], octets["reply_text"]
            facts = planned(delivery, body)
            verdict["delivered"] = facts.pop("delivered")
            if facts:
                verdict["delivery"] = facts
            headers = _response_fields(row, status, body, headers, reply_text, withheld=delivery.mode in WITHHELD)
            if connection is not None and connection.closed_at is not None:   # closed before it was waited on
                row.setdefault("connection_closed_at", connection.closed_at)
            problem = await self._commit(seq, row)
        finally:
            if connection is not None:
                connection.waiting[:] = [r for r in connection.waiting if r is not row]
        if problem is not None:
            return await self._overloaded(request, seq, row, problem)
        try:
            sent = await transmit(request, status=status, body=body, headers=headers, delivery=delivery)
        except ConnectionError as exc:             # the row stands: it says what the gateway sent
            log.info("exchange %s: the client went away during the response (%s)", seq, exc)
            sent = None
        return sent if sent is not None else _Gone()

    async def _wait(self, row: dict, seconds: float, octets: dict, session: str | None, spool: bool) -> None:
        """Wait out a scenario ``delay``. From ``SPOOL_DELAY_S`` on (and if ``spool``: a Send), the row's
        request octets (redacted under ``session``'s key) and the response's ``octets`` wait on disk
        (spool.py); both are back, as the evidence will store them, when the wait ends or is cancelled."""
        if seconds < SPOOL_DELAY_S or not spool:
            await asyncio.sleep(seconds)
            return
        aside = set_aside(self._fingerprint_of(session), row, self._passwords())
        try:
            spooled = self._spool.put({"request_body": aside["request_body"], "message_text": aside["message_text"],
                                       **octets})
        except OSError as exc:                     # a full or read-only disk: the octets wait in memory
            log.warning("exchange octets kept in memory during a delay: %s", exc)
            await asyncio.sleep(seconds)
            return
        row.update(request_body=spooled, message_text=None, **{SECRETS: aside[SECRETS]})
        octets.clear()
        del aside
        _shared(row)
        try:
            await asyncio.sleep(seconds)
        finally:
            back = Spool.take(spooled)
            row.update(request_body=back.pop("request_body"), message_text=back.pop("message_text"))
            octets.update(back)

    async def _commit(self, seq: int, row: dict) -> str | None:
        """Commit the row of ``seq`` (off the event loop: the wait for a locked file is bounded by
        ``evidence_busy_timeout``); returns None, or why it could not be committed (``seq`` stays open).

        A cancellation (the gateway stopping) waits for the commit to end, so whether the row exists
        is known: if not, ``_ends_in_a_row`` writes one saying no response was sent."""
        writing = asyncio.ensure_future(asyncio.to_thread(self.evidence.append, seq, **row))
        cancelled: asyncio.CancelledError | None = None
        while not writing.done():
            try:
                await asyncio.shield(writing)
            except asyncio.CancelledError as exc:
                cancelled = exc
            except EvidenceUnavailable:
                pass
        if writing.exception() is None:
            self._open.pop(seq, None)
            self._in_flight.pop(seq, None)
        if cancelled is not None:
            raise cancelled
        return str(writing.exception()) if writing.exception() is not None else None

    async def _overloaded(self, request: web.Request, seq: int, row: dict, problem: str) -> web.StreamResponse:
        """TRN-08: 503 + Retry-After instead of a response that could not be recorded; this answer's
        own row is deferred (written as soon as the evidence file accepts writes)."""
        log.error("exchange %s answered 503: %s", seq, problem)
        verdict = row["gateway_verdict"]
        verdict["evidence_unavailable"] = {
            "reason": problem, "withheld_status": row["response_status"], "withheld_reply_function": row["reply_function"],
            "withheld_reply_codes": row["reply_codes"], "withheld_body_sha256": hashlib.sha256(row["response_body"]).hexdigest()}
        verdict["delivered"] = True
        verdict.pop("delivery", None)
        headers = _response_fields(row, 503, OVERLOADED_BODY, {"Content-Type": "text/plain; charset=utf-8",
                                                               "Retry-After": str(RETRY_AFTER_S)}, None, withheld=False)
        self._open.pop(seq, None)
        self._in_flight.pop(seq, None)
        self.evidence.defer(seq, **row)
        try:
            return await transmit(request, status=503, body=OVERLOADED_BODY, headers=headers, delivery=Delivery())
        except ConnectionError:
            return _Gone()

    def _no_reply(self, seq: int, reason: str) -> None:
        """If ``seq`` is still open, its row: no response was sent, and why."""
        row = self._open.pop(seq, None)
        self._in_flight.pop(seq, None)
        if row is None:
            return
        verdict = dict(row.get("gateway_verdict") or {})
        verdict.update(no_reply=reason, delivered=False)
        self.evidence.defer(seq, **{**row, "gateway_verdict": verdict, "responded_at": None, "response_status": None,
                                    "response_headers": {}, "response_body": None, "reply_text": None,
                                    "reply_function": None, "reply_codes": []})

    # --- control API --------------------------------------------------------------------------
    @web.middleware
    async def _control_guard(self, request: web.Request, handler):
        token = request.headers.get(CONTROL_HEADER, "")
        if not hmac.compare_digest(token.encode(), self.control_token.encode()):
            problem = "wrong" if token else "no"        # said apart: the live page tells its reader which
            return web.json_response({"error": f"{problem} {CONTROL_HEADER} token", "token": problem}, status=403)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:                           # noqa: BLE001
            log.exception("control API failure")
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)

    async def _control_info(self, request: web.Request) -> web.Response:
        return web.json_response({
            "endpoint_url": self.endpoint_url, "wsdl_url": self.endpoint_url + "?wsdl",
            "crl_url": self.base_url + "/crl/",
            "case_id": _session(self, request).case.case_id, "accepted_versions": sorted(self.profiles, key=version_key),
            "time_scale": self.time_scale,
        })

    async def _control_begin_case(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        case_id = data.get("case_id") if isinstance(data, dict) else None
        if not isinstance(case_id, str) or not case_id:
            return web.json_response({"error": "case_id: must be a non-empty string"}, status=400)
        unknown = set(data) - {"case_id", "scenario"}
        if unknown:
            return web.json_response({"error": f"unknown key {sorted(unknown)[0]!r} (known: case_id, scenario)"},
                                     status=400)
        try:
            scenario = parse_scenario(data.get("scenario", {}), self.code_replies)
        except ScenarioError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        session = _session(self, request)
        version = None if self.shared is None else self.shared.begin_case(session.session_id, case_id,
                                                                           data.get("scenario", {}))
        self._begin_case(session, case_id, scenario, version)
        return web.json_response({"case_id": case_id, "scenario": scenario.name})

    async def _control_exchanges(self, request: web.Request) -> web.Response:
        session = _session(self, request)
        case_id = request.query.get("case_id", session.case.case_id)
        every_case = request.query.get("all") == "1"      # the whole campaign of the session (ENV-02)
        rows = [r for r in self._listing(None if every_case else case_id)
                if r["seq"] > self._campaign_after or not every_case]
        rows = [r for r in rows if (r["gateway_verdict"] or {}).get("session", DEFAULT_SESSION) == session.session_id
                and not _is_operator_row(r)
                and not (self.behaviour.history_omits_refusals and r.get("reply_function") == "271")]
        return web.json_response({"case_id": case_id, "exchanges": [_row_json(r) for r in rows]})

    async def _control_lag(self, request: web.Request) -> web.Response:
        """``{windows: [[t0, t1], ...]}`` (epoch seconds) -> ``{worst_s: [...]}``: this event loop's largest
        lateness overlapping each window (conformance/lag.py)."""
        data = await _json_body(request)
        windows = data.get("windows") if isinstance(data, dict) else None
        if not isinstance(windows, list) or not all(
                isinstance(w, list) and len(w) == 2 and all(isinstance(t, (int, float)) for t in w) for w in windows):
            return web.json_response({"error": "windows: must be a list of [t0, t1] pairs of numbers"}, status=400)
        return web.json_response({"worst_s": [self.lag.worst(t0, t1) for t0, t1 in windows]})

    async def _control_clock(self, request: web.Request) -> web.Response:
        clock = _session(self, request).clock
        return web.json_response({"offset": clock.offset, "now": clock.now().isoformat()})

    async def _control_advance_clock(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        seconds = data.get("seconds") if isinstance(data, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            return web.json_response({"error": "seconds: must be a number"}, status=400)
        session = _session(self, request)
        if self.shared is None:
            session.clock.advance(seconds)
        else:
            session.clock.set_offset(self.shared.advance_clock(session.session_id, seconds))
        return await self._control_clock(request)

    async def _live_page(self, request: web.Request) -> web.Response:
        """The operator's live view (static; it reads ``/_control/live`` with the token in its URL)."""
        return web.Response(body=LIVE_PAGE, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _control_live(self, request: web.Request) -> web.Response:
        """Summaries of exchanges after ``after`` (arrival seq) and OTP e-mails after ``mail_after``:
        no message texts or bodies (they hold passwords), just what an operator watches."""
        try:
            after, mail_after = int(request.query.get("after", 0)), int(request.query.get("mail_after", 0))
        except ValueError:
            return web.json_response({"error": "after, mail_after: must be integers"}, status=400)
        rows = [r for r in self._listing() if r["seq"] > after and not _is_operator_row(r)]
        session = _session(self, request)
        mails = [m.to_json() for m in session.mailbox.messages() if m.seq > mail_after]
        return web.json_response({"exchanges": [{**{k: r.get(k) for k in _LIVE_FIELDS}, "result": _live_result(r)}
                                                for r in rows],
                                  "mail": mails, "prompts": [p.to_json() for p in session.prompts.open()],
                                  "now": session.clock.now().isoformat()})

    # --- operator prompts (prompts.py) --------------------------------------------------------
    async def _control_prompts(self, request: web.Request) -> web.Response:
        """The session's prompts, oldest first; ``?status=open`` for those awaiting an answer."""
        items = _session(self, request).prompts.items.values()
        wanted = request.query.get("status")
        now = time.time()
        return web.json_response({"prompts": [p.to_json(now) for p in items if wanted in (None, p.status(now))]})

    async def _control_create_prompt(self, request: web.Request) -> web.Response:
        """The harness's question for the operator. Its text is refused if it holds a password the
        gateway knows: the page is a shared screen and must never show one, whatever the caller sends."""
        data = await _json_body(request)
        secrets_ = [a.password for a in self.accounts.values()] + [self.pki.p12_password]
        try:
            prompt = _session(self, request).prompts.create(data, secrets_)
        except PromptError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.json_response(prompt.to_json())

    async def _control_prompt(self, request: web.Request) -> web.Response:
        return self._prompt_call(request, "get")

    async def _control_withdraw_prompt(self, request: web.Request) -> web.Response:
        return self._prompt_call(request, "withdraw")

    def _prompt_call(self, request: web.Request, method: str) -> web.Response:
        """Read (``get``) or ``withdraw`` one prompt of the request's session; 404 names an unknown id."""
        try:
            prompt = getattr(_session(self, request).prompts, method)(request.match_info["prompt_id"])
        except PromptError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        return web.json_response(prompt.to_json())

    async def _control_answer_prompt(self, request: web.Request) -> web.Response:
        """``{answer, operator}``: accepted only while the prompt is open and if allowed by it; the
        accepted answer becomes an evidence row (the operator attestation) before it is confirmed."""
        session = _session(self, request)
        received_at, body = time.time(), await request.read()
        try:
            data = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        try:
            prompt = session.prompts.answer(request.match_info["prompt_id"], data)
        except PromptError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        client = request.remote or ""
        attestation = {k: v for k, v in prompt.to_json().items() if k not in ("seconds_left", "evidence_seq")}
        attestation["client"] = client
        prompt.evidence_seq = seq = self.evidence.next_seq()   # numbered once accepted: refusals leave no gap
        response = prompt.to_json()
        row = dict(case_id=prompt.case_id, received_at=received_at, responded_at=time.time(),
                   client=client, method=request.method, path=request.path,
                   request_headers={k: v for k, v in request.headers.items() if k.lower() == "user-agent"},
                   request_body=body, attempt=0, response_status=200, response_body=json.dumps(response).encode(),
                   clock_offset=session.clock.offset,
                   gateway_verdict={"session": session.session_id, "operator_attestation": attestation})
        try:                # on the event loop: nobody may read the prompt as answered before its row exists
            self.evidence.append(seq, **row)
            return web.json_response(response)
        except EvidenceUnavailable as exc:
            problem = str(exc)
        log.error("could not record the operator attestation of prompt %s: %s", prompt.prompt_id, problem)
        prompt.answer = prompt.operator = prompt.answered_at = prompt.evidence_seq = None
        refusal = {"error": "the answer could not be recorded in the evidence log; answer again"}
        # The number is taken: its row says the answer was refused, not attested.
        self.evidence.defer(seq, **{**row, "response_status": 500, "response_body": json.dumps(refusal).encode(),
                                    "gateway_verdict": {"session": session.session_id, "evidence_unavailable": problem,
                                                        "operator_answer_refused": attestation}})
        return web.json_response(refusal, status=500)

    async def _control_sessions(self, request: web.Request) -> web.Response:
        self.sync_sessions()
        return web.json_response({"sessions": [
            {"session_id": s.session_id, "user_ids": sorted(s.user_ids), "case_id": s.case.case_id,
             "clock_offset": s.clock.offset} for s in self.sessions.values()]})

    async def _control_create_session(self, request: web.Request) -> web.Response:
        """``{session_id, accounts: [{user_id, password, tax_codes}]}``: a new isolated session whose
        requests are those of these (new) UserIds."""
        data = await _json_body(request)
        self.sync_sessions()
        try:
            session_id, accounts = _parse_session(data, self.sessions, self.accounts)
            shared_session_extras(data)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if self.shared is not None and not self.shared.create(session_id, data):
            return web.json_response({"error": f"session_id: {session_id!r} exists"}, status=400)
        self._adopt_session(data)
        if self.shared is not None:
            self._case_versions[session_id] = 0
        return web.json_response({"session_id": session_id, "user_ids": [a.user_id for a in accounts]})

    async def _control_mailbox(self, request: web.Request) -> web.Response:
        mails = _session(self, request).mailbox.messages(tax_code=request.query.get("tax_code"),
                                      payment_order_id=request.query.get("payment_order_id"))
        return web.json_response({"messages": [m.to_json() for m in mails]})

    def _listing(self, case_id: str | None = None) -> list[dict]:
        """The rows of ``case_id`` (None: all) by ``seq``, with the exchanges not committed yet (in
        flight, deferred). Those are read first: a row committed meanwhile is listed once, as committed."""
        in_flight = [{**dict.fromkeys(COLUMNS), "seq": seq, **self.redacted(_unspooled(row))}
                     for seq, row in list(self._in_flight.items())]
        unwritten = {r["seq"]: r for r in in_flight + self.evidence.deferred()}
        rows = self.evidence.rows(case_id)
        unwritten.update((r["seq"], r) for r in rows)
        return sorted((r for r in unwritten.values() if case_id is None or r["case_id"] == case_id),
                      key=lambda r: r["seq"])

    async def _control_slice(self, request: web.Request) -> web.Response:
        """``?sessions=a,b``: the chain's slice holding those sessions' rows (evidence_slice.py), and how many
        of their rows are not committed yet (``pending``: in flight or deferred; ask again once it is 0)."""
        sessions = {s for s in request.query.get("sessions", "").split(",") if s}
        self.sync_sessions()
        unknown = sorted(sessions - set(self.sessions)) or sorted(sessions & {DEFAULT_SESSION})
        if not sessions or unknown:
            return web.json_response({"error": f"sessions: {unknown[0]!r} is not a session of its own" if unknown
                                      else "sessions: name one or more sessions, comma-separated"}, status=400)
        pending = [r for r in [*self._in_flight.values(), *self.evidence.deferred()]
                   if (r.get("gateway_verdict") or {}).get("session") in sessions]
        exported = await asyncio.get_running_loop().run_in_executor(None, export_slice, self.evidence.path, sessions)
        return web.json_response({**exported, "pending": len(pending)})

    async def _control_verify(self, request: web.Request) -> web.Response:
        unwritten = set(self._open) | {r["seq"] for r in self.evidence.deferred()}
        ok, first_bad = verify_chain(self.evidence.path, unwritten=unwritten)
        return web.json_response({"ok": ok, "first_bad_row": first_bad})


# ------------------------------------------------------------------------------------------


def _load_pki(folder: Path) -> TestPKI:
    """Load the PKI the harness generated in ``folder`` (for its tax code: never regenerate it)."""
    try:
        tax_code = json.loads((folder / TestPKI.META).read_text())["params"]["tax_code"]
    except (OSError, ValueError, KeyError):
        tax_code = DEFAULT_TAX_CODE
    return TestPKI.ensure(folder, tax_code=tax_code)


def _handed_over(answer: dict) -> dict:
    """A copy of ``answer``, which is emptied: the caller's frame keeps nothing of it while the callee waits."""
    out = dict(answer)
    answer.clear()
    return out


def _shared(value):
    """``value`` with its strings interned, dicts and lists changed in place (they stay the objects others
    hold): the rows of requests waiting out a delay repeat the same certificate names, suites, header names
    and values, steps, ... each in strings of its own (≈ 2 KB a row)."""
    if type(value) is str:
        return sys.intern(value)
    if type(value) is dict:
        items = [(_shared(k), _shared(v)) for k, v in value.items()]
        value.clear()
        value.update(items)
    elif type(value) is list:
        value[:] = [_shared(item) for item in value]
    elif type(value) is tuple:
        return tuple(_shared(item) for item in value)
    return value


def _unspooled(row: dict) -> dict:
    """``row`` with the octets it set aside while it waits (``Gateway._wait``) read back."""
    if not isinstance(row.get("request_body"), Spooled):
        return row
    back = Spool.read(row["request_body"])
    return {**row, "request_body": back["request_body"], "message_text": back["message_text"]}


class _Gone(web.StreamResponse):
    """Returned when ``transmit`` left nothing to send (connection reset or held then closed):
    aiohttp treats it as a client that went away, and writes nothing more."""

    async def prepare(self, request):
        raise ConnectionResetError("the connection was closed by a scenario fault")


def _summary(reply_text: bytes | None) -> tuple[str | None, list[str]]:
    """Function and codes of the reply sent, or (None, []) when it is not a readable reply (a
    ``malformed`` fault)."""
    if not reply_text:
        return None, []
    try:
        return reply_summary(reply_text)
    except Exception:                                  # noqa: BLE001 — a deliberately broken reply
        return None, []


def _response_fields(row: dict, status: int, body: bytes, headers: dict, reply_text: bytes | None, *,
                     withheld: bool) -> dict:
    """Put the response about to be sent into ``row`` (its time: now, or None if ``withheld``);
    returns the headers to send, with the ``Date`` and ``Server`` that aiohttp would add, so that
    the recorded headers are the sent ones."""
    headers = {**headers, "Date": formatdate(usegmt=True), "Server": SERVER_SOFTWARE}
    reply_function, reply_codes = _summary(reply_text)
    row.update(responded_at=None if withheld else time.time(), response_status=status or None,
               response_headers={**headers, "Content-Length": str(len(body))}, response_body=body,
               reply_text=reply_text, reply_function=reply_function, reply_codes=reply_codes)
    return headers


LARGE_BODY = 1 << 20


async def _body(request: web.Request, limit: int) -> bytes | bytearray:
    """``request.read()`` without its last step, a copy of the whole body in one go on the event loop (a
    14 MB body held every other request back for 5-10 ms): a body of ``LARGE_BODY`` or more stays the
    ``bytearray`` it was read into (nothing changes it). Over ``limit``: 413, as aiohttp's."""
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body if len(body) >= LARGE_BODY else bytes(body)


def _tls_facts(request: web.Request) -> dict:
    """TLS protocol and cipher suite the client negotiated (TRN-09 evidence)."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return {}
    cipher = ssl_object.cipher()
    return {"protocol": ssl_object.version(), "cipher": cipher[0] if cipher else None}


def _session(gw: Gateway, request: web.Request) -> Session:
    """The session a control call is about: header ``X-ECDI-Session``, default the default session."""
    session_id = request.headers.get(SESSION_HEADER, DEFAULT_SESSION)
    gw.sync_sessions()
    session = gw.sessions.get(session_id)
    if session is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"{SESSION_HEADER}: no session {session_id!r}"}),
                               content_type="application/json")
    return session


def _parse_session(data, sessions: dict, accounts: dict) -> tuple[str, list[Account]]:
    """Validate a create-session body; ValueError names the offending key."""
    if not isinstance(data, dict):
        raise ValueError("body: must be a JSON object with session_id and accounts")
    unknown = sorted(set(data) - {"session_id", "accounts", *SHARED_SESSION_KEYS})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: session_id, accounts, {', '.join(SHARED_SESSION_KEYS)})")
    session_id = data.get("session_id")
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise ValueError(f"session_id: must match {SESSION_ID.pattern}, got {session_id!r}")
    if session_id in sessions:
        raise ValueError(f"session_id: session {session_id!r} already exists")
    items = data.get("accounts")
    if not isinstance(items, list) or not items:
        raise ValueError("accounts: must be a non-empty list of {user_id, password, tax_codes}")
    out = []
    for i, item in enumerate(items):
        where = f"accounts[{i}]"
        if not isinstance(item, dict) or set(item) - {"user_id", "password", "tax_codes"}:
            raise ValueError(f"{where}: must be an object with exactly user_id, password, tax_codes")
        user_id, password, tax_codes = item.get("user_id"), item.get("password"), item.get("tax_codes")
        if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id):
            raise ValueError(f"{where}.user_id: must be a UserId (§4.2), got {user_id!r}")
        if user_id in accounts or user_id in {a.user_id for a in out}:
            raise ValueError(f"{where}.user_id: {user_id!r} already has an account on this gateway")
        if not isinstance(password, str) or not 1 <= len(password) <= 128:
            raise ValueError(f"{where}.password: must be a string of 1 to 128 characters (TRN-11)")
        if not isinstance(tax_codes, list) or not tax_codes or not all(
                isinstance(t, str) and TAX_CODE.fullmatch(t) for t in tax_codes):
            raise ValueError(f"{where}.tax_codes: must be a non-empty list of TaxCodes (§4.2)")
        out.append(Account(user_id, password, list(tax_codes)))
    return session_id, out


def _request_fields(ex: pipeline.Exchange | None) -> dict:
    """The evidence fields the pipeline learnt about a Send request (none for other requests)."""
    if ex is None:
        return {"attempt": 0}
    h = ex.header
    return {"message_text": ex.text, "user_id": ex.call.user_id if ex.call else None,
            "message_id": h.get("Reference/messageId"), "type": h.get("Subject/type"),
            "function": h.get("Subject/function"), "reference": h.get("Subject/reference"),
            "attempt": ex.attempt, "rule": ex.rule.label if ex.rule else None, SECRETS: ex.secrets}


def _headers(request: web.Request) -> dict[str, str]:
    """Request headers as a dict; a repeated header's values are joined with ", " (RFC 9110)."""
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _is_operator_row(row: dict) -> bool:
    """An operator's answer to a prompt (attested, or refused for want of evidence): evidence, but
    not an exchange with the product."""
    return not {"operator_attestation", "operator_answer_refused"}.isdisjoint(row.get("gateway_verdict") or {})


def _live_result(row: dict) -> str:
    """What the gateway answered, in a phrase for the live page: the ECDI reply and its codes, a SOAP fault's
    code and text, the evaluation step that refused the request, why nothing was sent, else the HTTP
    status's phrase (a WSDL GET: OK; a stray path: Not Found)."""
    verdict = row.get("gateway_verdict") or {}
    if row.get("reply_function"):
        return " ".join([row["reply_function"], *(row.get("reply_codes") or [])])
    if verdict.get("no_reply"):
        return f"no reply: {verdict['no_reply']}"
    body = row.get("response_body")
    if row.get("response_status") == 500 and body:
        try:
            soap.parse_send_response(body)
        except soap.SoapFault as fault:
            return f"fault {fault.faultcode}: {fault.faultstring}"
        except Exception:                                  # noqa: BLE001 — not a fault: say the step below
            pass
    if verdict.get("failed_step"):
        return f"refused at {verdict['failed_step']}"
    status = row.get("response_status")
    try:
        return HTTPStatus(status).phrase if status else ""
    except ValueError:
        return ""


def _row_json(row: dict) -> dict:
    return {k: base64.b64encode(v).decode("ascii") if k in _BYTES_FIELDS and v is not None else v
            for k, v in row.items()}


async def _json_body(request: web.Request):
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not JSON"}), content_type="application/json")


def _tls_context(pki: TestPKI, ciphers: str) -> ssl.SSLContext:
    """TLS 1.2+ only; for 1.2 ``ciphers`` (by default only ECDHE with AEAD ciphers: TRN-09, one of the
    mandatory suites)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(pki.tls_server.cert_pem, pki.tls_server.key_pem)
    return ctx


class _TrackedSite(web.TCPSite):
    """aiohttp's TCP site, serving through ``connections.tracked`` so every connection's accept, TLS
    handshake and close are timed (REL-01, REL-06), and its handshake and request heads bounded."""

    def __init__(self, runner, host, port, *, limits: GatewayConfig, **kwargs):
        super().__init__(runner, host, port, **kwargs)
        self._limits = limits
        self.open_connections = OpenConnections(limits.max_connections)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        self._server = await asyncio.get_running_loop().create_server(
            tracked_tls(self._runner.server, self._ssl_context, header_timeout=self._limits.header_timeout,
                        handshake_timeout=self._limits.handshake_timeout, open_connections=self.open_connections),
            self._host, self._port, backlog=self._backlog, reuse_address=self._reuse_address,
            reuse_port=self._reuse_port)


@dataclass
class RunningGateway:
    gateway: Gateway
    endpoint_url: str
    wsdl_url: str
    control_url: str
    crl_url: str
    control_token: str
    evidence_db: Path | str               # a file, or the PostgreSQL URL
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _runner: web.AppRunner
    _monitor: asyncio.Task | None = None

    def stop(self) -> None:
        """Stop serving (responses in flight get ``shutdown_timeout``), close the databases."""
        if not self._thread.is_alive():
            return
        self.gateway.end_all_cases()               # release held connections
        self._loop.call_soon_threadsafe(self.gateway.stop_cpu_waits)
        if self._monitor is not None:
            self._loop.call_soon_threadsafe(self._monitor.cancel)
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(
                timeout=self.gateway.config.shutdown_timeout + 10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self.gateway.close()


async def _all(coroutines) -> None:
    await asyncio.gather(*coroutines)


def run_in_thread(config: GatewayConfig) -> RunningGateway:
    """Start the gateway on its own event loop in a daemon thread; returns once it is listening."""
    gateway = Gateway(config)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(gateway.web_app(), handle_signals=False, access_log=None,
                           shutdown_timeout=config.shutdown_timeout, keepalive_timeout=config.keepalive_timeout)
    ready = threading.Event()
    failure: list[BaseException] = []
    monitor: list[asyncio.Task] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            gateway.start_workers()
            loop.run_until_complete(runner.setup())
            site = _TrackedSite(runner, config.host, config.port, limits=config,
                                ssl_context=watch_handshakes(_tls_context(gateway.pki, gateway.behaviour.tls12_ciphers)))
            loop.run_until_complete(site.start())
            watches = [watch_loop(gateway.lag)] + ([gateway.watch_sessions()] if gateway.shared is not None else [])
            monitor.append(loop.create_task(_all(watches)))
        except BaseException as exc:                       # noqa: BLE001 — reported to the caller
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=serve, name="ecdi-mock-gateway", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        gateway.close()
        raise RuntimeError(f"the mock gateway could not start: {failure[0]}") from failure[0]
    host, port = runner.addresses[0][:2]
    gateway.base_url = base = (config.public_url or f"https://{host}:{port}").rstrip("/")
    return RunningGateway(gateway, gateway.endpoint_url, gateway.endpoint_url + "?wsdl", base + CONTROL_PREFIX,
                          base + "/crl/", gateway.control_token, config.evidence_target(), loop, thread, runner,
                          monitor[0] if monitor else None)
