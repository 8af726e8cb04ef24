"""What a running case sees: the profile, the gateway-control seam, the driver seam, test data.

Cases never touch sockets, the gateway's internals or the reference DTS: everything goes through
this object, which is also where findings are recorded against the case's verdict.
"""

from __future__ import annotations

from . import lag
from .progress import notify_waiting
from .case import CaseFailure, CaseSpec, Check
from .drivers.base import Action, DriverError, DriverInconclusive, Outcome
from .tape import RecordingData, RecordingDriver, RecordingGateway, RecordingSettings, Tape
from .verdict import CaseRecord, EvidenceKind, Finding, Status, Verdict


class HarnessError(Exception):
    """A fault of the harness or of a case's own definition (never of the DTS): verdict ERROR."""


# Table 7-3: the steps of the gateway's own evaluation (as its evidence names them) and the DTS requirements
# whose breach each detects. A lodgement a case needs, refused at a step naming one of the case's own
# requirements, FAILs the case on it; refused at any other step it is a set-up failure (``needs_recorded``).
REFUSING_STEPS = {
    "soap": ("TRN-03", "TRN-04", "TRN-05"),
    "credentials": ("TRN-11",),
    "xml": ("TXT-01", "TXT-02"),
    "replay": ("REL-05", "ENV-02"),
    "version": ("CAP-01",),
    "envelope": ("ENV-01", "ENV-04", "ENV-05", "ENV-07", "TXT-03", "TXT-04", "TXT-05"),
    "certification": ("ENV-08",),
    "signature": ("SIG-01", "SIG-02", "SIG-03", "SIG-04"),
    "certificate": ("SIG-01", "SIG-12"),
    "issue_time": ("ENV-03",),
    "authorisation": ("ENV-06",),
    "content": ("DOC-01", "ENV-05", "TXT-03", "TXT-04", "TXT-05", "TXT-06"),
    "query_target": ("REL-13", "REL-08"),
    "duplicate_reference": ("ENV-05",),
    "field_values": ("DOC-01", "DOC-03", "ENV-06", "PAY-01", "PAY-02"),
}


def gateway_refusal(exchange, until: str | None = None) -> tuple[str, str] | None:
    """(step, cause) when the gateway's own evaluation refused ``exchange`` before step ``until`` (None: at
    any step), whatever reply a scenario then substituted or broke; None when it passed. An idempotent
    replay of the recorded entry 1 (step ``replay``, REL-10) is no refusal."""
    verdict = exchange.gateway_verdict or {}
    step = verdict.get("failed_step")
    if step is None or (until is not None and (step == until or until in verdict.get("steps_passed", ()))):
        return None
    natural = verdict.get("natural_outcome") or {"function": exchange.reply_function, "codes": exchange.reply_codes}
    if step == "replay" and natural.get("function") != "271":
        return None
    own = verdict.get(step) if isinstance(verdict.get(step), dict) else {}
    # the step's own code first: a scenario may have altered the reply's codes (a forged digit)
    codes = own.get("code") or " ".join(natural.get("codes") or ())
    return step, f"{natural.get('function') or 'refused'} {codes}".strip()


class _Configured:
    """The settings of the Environment the case's DTS runs with (see ``CaseContext.setting``)."""

    def __init__(self, ctx: "CaseContext"):
        self._ctx = ctx

    def get(self, name: str):
        env = self._ctx._environment or self._ctx._harness.case_environment(self._ctx.run_id)
        value = getattr(env, name)
        return str(value) if value is not None else None


def _run_secrets(harness) -> list[str]:
    """The run's passwords (CGW accounts, PKCS#12), never written on a tape in clear."""
    env = getattr(harness, "environment", None)
    if env is None or getattr(harness, "fingerprint", None) is None:
        return []
    return [env.password, env.p12_password, *(a.password for a in env.accounts)]


class CaseContextBase:
    """What every case sees, whichever party is under test (``party.py``): its spec and record, the profile,
    the tape, timers and tolerances, and the verdict calls (check, inconclusive, setup_failed). The two
    sides add the stimulus and observation of their party: ``CaseContext`` (the DTS, driven through a driver,
    watched from the harness's gateway) and ``playing_dts.context.GatewayCaseContext`` (the CGW, addressed by
    the harness's own DTS client)."""

    def __init__(self, spec: CaseSpec, record: CaseRecord, harness, attempt: int = 1, secrets: list[str] = ()):
        self.spec = spec
        self.record = record
        # A case re-run because harness lag disturbed it (conformance/lag.py) runs under its own id at the
        # gateway and in its own DTS state folder, so no attempt sees another's exchanges.
        self.attempt = attempt
        self.run_id = spec.id if attempt == 1 else f"{spec.id}@{attempt}"
        self.disturbed = False
        self._harness = harness
        self.profile = harness.profile
        self.sut = harness.sut
        # What the case reads from the world is recorded on its tape (evidence bundle, ``ecdi replay``);
        # the recording wrappers pass every call through unchanged.
        self.tape = Tape(fingerprint=getattr(harness, "fingerprint", None), secrets=list(secrets))
        self.scenario: dict | None = None


    # --- timings (profile timers and PIXIT values, scaled per §2.1) -------------------------
    @property
    def time_scale(self) -> float:
        return self._harness.time_scale

    def timer(self, name: str) -> float:
        return self.profile.timer(name, self.time_scale)

    def tolerance(self, seconds: float) -> float:
        """CAP-06 tolerance of a timing under this run's time scale (``Profile.tolerance``)."""
        return self.profile.tolerance(seconds, self.time_scale)

    # --- verdicts ---------------------------------------------------------------------------
    def check(self, result: Check, requirement: str, *, evidence: EvidenceKind = EvidenceKind.WIRE,
              severity: Verdict = Verdict.FAIL, stop: bool = False, should: bool = False) -> bool:
        """Record an atomic check's result against ``requirement`` with the severity the case picks.
        ``should``: the check tests a SHOULD part of a MUST requirement (TRN-05's CDATA, TRN-14's ≤ 4
        requests at once): failed, it is reported as "SHOULD not met" and leaves the verdict alone."""
        if requirement not in self.spec.requirements:
            raise HarnessError(f"case {self.spec.id} cites {requirement}, which it does not declare")
        if evidence is EvidenceKind.DRIVER:  # what a manual driver reports is an operator's attestation
            evidence = EvidenceKind(getattr(getattr(self._harness, "driver", None), "evidence_kind",
                                            EvidenceKind.DRIVER.value))
        verdict = Verdict.PASS if result.ok else Verdict.INCONCLUSIVE if result.undecided else severity
        # CAP-02: where the loaded profile makes the requirement a SHOULD (PAY-11 in 1.0), a failed check
        # is reported as "SHOULD not met" and leaves the case's verdict alone.
        listed = self.profile.requirements.get(requirement)
        advisory = not result.ok and (should or (listed is not None and listed.level_for(self.spec.party) == "SHOULD"))
        message = result.message
        if verdict is Verdict.FAIL and not advisory:
            lags = self._lag_explaining(result)
            if lags is not None:                 # the harness's own lag could explain the miss: not the DTS's
                verdict, message, self.disturbed = Verdict.INCONCLUSIVE, lag.overloaded_message(lags, message), True
        self.record.record(Finding(verdict, message, requirement, evidence, result.detail, advisory,
                                   result.expected, result.observed))
        if stop and not result.ok and not advisory:
            raise CaseFailure(result.message)
        return result.ok

    def _lag_explaining(self, result: Check) -> list[float] | None:
        """For a failed timing check (its detail names ``windows`` and ``shortfall_s``): the harness's lag per
        window when it could explain the miss (``lag.explains``), else None. The lag read goes on the tape."""
        detail = result.detail if isinstance(result.detail, dict) else {}
        windows, shortfall = detail.get("windows"), detail.get("shortfall_s")
        if not windows or not shortfall:
            return None
        lags = self.harness_lag(windows)
        return lags if lag.explains(shortfall, lags) else None

    def harness_lag(self, windows: list[list[float]]) -> list[float]:
        """Per window (epoch seconds), the lateness of the gateway's event loop plus that of this process
        (see conformance/lag.py); ``ecdi replay`` answers from the tape."""
        recorded = getattr(self._harness, "recorded_lag", None)
        if recorded is not None:
            result = recorded(windows)
        else:
            try:
                gateway = self._harness.gateway_control.lag(windows)
            except Exception:                    # noqa: BLE001 — an older or remote gateway: its side unknown
                gateway = [0.0] * len(windows)
            process = [lag.process_monitor().samples.worst(t0, t1) for t0, t1 in windows]
            result = {"gateway_s": gateway, "process_s": process}
        self.tape.add({"op": "lag", "windows": windows, "result": result})
        return [g + p for g, p in zip(result["gateway_s"], result["process_s"])]

    def inconclusive(self, message: str, requirement: str | None = None) -> None:
        self.record.record(Finding(Verdict.INCONCLUSIVE, message, requirement))

    # --- set-up: what a case needs before it can judge its own requirements ------------------------
    def setup_failed(self, cause: str, what: str, detail: str = "") -> None:
        """The case cannot judge its requirements: ``what`` it needs failed for ``cause`` (e.g. "271
        G0007"), a reason outside them. INCONCLUSIVE with the cause, which results.json and the run summary
        group cases by; the case stops."""
        self.record.setup_failure = self.record.setup_failure or cause
        message = f"setup failed: {cause} on {what}" + (f" ({detail})" if detail else "")
        self.record.record(Finding(Verdict.INCONCLUSIVE, message, None, detail={"setup_failure": cause}))
        raise CaseFailure(message)


class CaseContext(CaseContextBase):
    """The DTS side: the harness plays the CGW (its mock gateway) and drives the DTS through a driver."""

    def __init__(self, spec: CaseSpec, record: CaseRecord, harness, attempt: int = 1):
        super().__init__(spec, record, harness, attempt, _run_secrets(harness))
        self.gateway = RecordingGateway(harness.gateway_control, self.tape)
        self.driver = RecordingDriver(harness.driver, self.tape)
        self.data = RecordingData(harness.data, self.tape)
        self._environment = None   # the Environment of the last (re)start by the case; None: the plugin's
        # ecdi replay answers settings from the tape; a live run reads the DTS's current Environment
        self.settings = RecordingSettings(getattr(harness, "recorded_settings", None) or _Configured(self), self.tape)

    def pixit_seconds(self, key: str) -> float:
        return float(self.sut.pixit[key]) * self.time_scale

    # --- set-up -----------------------------------------------------------------------------
    def given(self, scenario: dict) -> None:
        """Put the gateway in ``scenario`` for the rest of this case."""
        self.scenario = scenario
        self.gateway.begin_case(self.run_id, scenario)

    # --- stimulus ---------------------------------------------------------------------------
    def lodge(self, sample: str, *, type: str, function: str = "8") -> Outcome:
        """Ask the DTS to lodge a fixture document, as its user would."""
        return self._perform(Action(kind="lodge", type=type, function=function, document=self.data.document(sample)))

    def lodge_document(self, document: bytes, *, type: str, function: str = "8") -> Outcome:
        """Ask the DTS to lodge ``document`` (the Content child as XML octets) as what its user entered or
        imported — e.g. ``ecdi.data.document(sample, goods=51)``, a seeded variant of a sample."""
        return self._perform(Action(kind="lodge", type=type, function=function, document=document))

    def lodge_document_with_requests(self, document: bytes, *, type: str = "929") -> tuple[Outcome, list]:
        """Lodge ``document`` (see ``lodge_document``) and return what the DTS showed with the function-8
        requests of ``type`` that this lodge caused (none when the DTS refused it locally)."""
        before = {r.seq for r in self.requests(type=type, function="8")}
        outcome = self.lodge_document(document, type=type)
        return outcome, [r for r in self.requests(type=type, function="8") if r.seq not in before]

    # --- payments (§10) and local users (SEC-08) ------------------------------------------------
    def local_accounts(self) -> dict[str, str]:
        """SEC-08: the DTS's local users, in order (the first acts when none is named), and each one's
        own CGW UserId. Noted on the tape like every setting."""
        text = self.setting("local_accounts") or ""
        return dict(pair.split("=", 1) for pair in text.split(",") if "=" in pair)

    def payment_entry(self, sample: str, *, declaration_number: str) -> bytes:
        """What the user enters for a payment order: the sample's tax lines varied by the run's seed, for
        the declaration ``declaration_number``; ``maker`` empty and ``description`` holding only the user's
        note — the DTS fills in the maker (PAY-02) and renders the description (PAY-01)."""
        from lxml import etree

        from .codec.namespaces import PAY, q
        from .codec.safexml import hardened_parser

        root = etree.fromstring(self.data.document(sample), hardened_parser())
        for number in root.iter(q(PAY, "declarationNumber")):
            number.text = declaration_number
        return etree.tostring(root, encoding="utf-8")

    def create_payment(self, entry: bytes, *, user: str | None = None) -> Outcome:
        """The local user ``user`` (None: the first) creates a payment order from ``entry`` (701/8)."""
        return self._perform(Action(kind="lodge", type="701", function="8", document=entry, user=user))

    def request_otp(self, order_id: str, *, user: str | None = None) -> Outcome:
        """The user asks for a new OTP for the order (702/16, PAY-09)."""
        return self._perform(Action(kind="lodge", type="702", function="16", submission_id=order_id, user=user))

    def approve(self, order_id: str, otp: str, *, user: str | None = None) -> Outcome:
        """The user approves the order with ``otp`` (702/8)."""
        return self._perform(Action(kind="lodge", type="702", function="8", submission_id=order_id, otp=otp,
                                    user=user))

    def otp_mails(self, order_id: str) -> list[dict]:
        """The OTP e-mails the gateway delivered for the order, oldest first (PAY-04), as the user's mailbox
        shows them; read once, never waited for (a withheld e-mail is simply absent)."""
        return self.gateway.mailbox(payment_order_id=order_id)

    def otp_from_mail(self, order_id: str) -> str | None:
        """The OTP of the order's latest e-mail — what the user would type — or None if none arrived."""
        mails = self.otp_mails(order_id)
        return mails[-1]["otp"] if mails else None

    def fingerprint(self, value: str | None) -> str | None:
        """``value`` as the evidence and the tape keep a secret (a password, an OTP): its keyed fingerprint.
        What a replay reads is a fingerprint already, and stays as it is."""
        fp = getattr(self._harness, "fingerprint", None)
        return value if value is None or fp is None else fp(value)

    def install_certificate(self, name: str) -> None:
        """The user installs the test certificate ``name`` (see ``pki_matrix``) and restarts the DTS.

        The DTS starts afresh with it, as after a real certificate change; the name is kept on the case
        record so the report shows which certificate each verdict was obtained with.
        """
        env = self._harness.case_environment(self.run_id, certificate=name)
        self.driver.stop()
        self.driver.start(env)
        self._environment = env
        self.record.certificates.append(name)

    def restart(self) -> None:
        """The user closes the product and opens it again: the DTS stops and starts on the SAME state
        folder (installation, stored messages, journal kept), as configured now (ENV-07, REL-09)."""
        env = self._environment or self._harness.case_environment(self.run_id)
        self.driver.stop()
        self.driver.start(env)

    def setting(self, name: str):
        """A value the harness configured the DTS with for this case (CAP-07): ``tax_code`` (the declarant
        the user acts for), ``office`` (the office of lodgement), ``office_name``, ``declarant_name``,
        ``user_id``, ``profile_id``. Noted on the tape, so ``ecdi replay`` uses the same value."""
        return self.settings.get(name)

    def search_product_files(self) -> dict:
        """SEC-01/SEC-02: search every file of the product (``Driver.product_files``) for the CGW password, the
        PKCS#12 password (UTF-8, UTF-16LE, base64) and the declarant's private key exported (DER or PEM).
        Returns ``checks.search_files``'s result, with the secrets named "CGW password", "PKCS#12 password"
        and "private key"."""
        def needles() -> dict[str, list[bytes]]:
            from cryptography.hazmat.primitives.serialization import pkcs12

            from .checks import private_key_encodings, secret_encodings

            env = getattr(self, "_environment", None) or self._harness.case_environment(self.run_id)
            passwords = [env.password, *(a.password for a in getattr(env, "accounts", ()))]
            out = {"CGW password": [e for pw in dict.fromkeys(passwords) for e in secret_encodings(pw)],
                   "PKCS#12 password": secret_encodings(env.p12_password)}
            try:
                key, _, _ = pkcs12.load_key_and_certificates(env.p12.read_bytes(), env.p12_password.encode())
                out["private key"] = private_key_encodings(key)
            except (OSError, ValueError):
                pass
            return out

        return self.driver.search_product_files(needles)

    def act_for_branch(self) -> str:
        """The user now acts for the declarant's branch (tax code ``NNNNNNNNNN-NNN``), keeping the parent's
        certificate installed (SIG-09), and restarts the DTS. Returns the branch's tax code."""
        env = self._harness.case_environment(self.run_id, branch=True)
        self.driver.stop()
        self.driver.start(env)
        self._environment = env
        branch = self.setting("tax_code")            # on the tape: ``ecdi replay`` knows the branch too
        self.record.certificates.append(f"{env.certificate} (parent's, for branch {branch})")
        return branch

    def use_endpoint(self, variant: str) -> str:
        """The user configures as ``cgw_endpoint`` the harness's TLS probe ``variant`` (an expired,
        self-signed or wrong-host certificate, TLS 1.1 only, ...: ``mock_server.tls_probe.VARIANTS``)
        and restarts the DTS; ``tls_connections`` then lists what reached the probe. Returns the endpoint."""
        probes = getattr(self._harness, "recorded_probes", None) or self._harness   # ecdi replay: from the tape
        probe = probes.tls_probe(variant)
        env = self._harness.case_environment(self.run_id, endpoint=probe.endpoint)
        self.driver.stop()
        self.driver.start(env)
        self._environment = env
        self._probe, self._probe_since = probe, probe.last_seq()
        self.record.certificates.append(f"TLS probe {variant}")
        return probe.endpoint

    def tls_connections(self) -> list[dict]:
        """The connections that reached the TLS probe of the last ``use_endpoint`` since that call:
        offered versions and suites, handshake result, HTTP bytes received (``tls_probe.Connection``)."""
        probe = getattr(self, "_probe", None)
        rows = probe.rows(self._probe_since) if probe is not None else []
        self.tape.add({"op": "tls_connections", "result": rows})
        return rows

    def _perform(self, action: Action) -> Outcome:
        self._announce_wait(action)
        self.record.status = Status.WAITING
        try:
            return self.driver.perform(action)
        finally:
            self.record.status = Status.RUNNING

    def _announce_wait(self, action: Action) -> None:
        """Tell the console what the DTS's action will wait on, and how long where the scenario says: customs
        answering 12 to its first N queries keeps it polling N + 1 ``poll_interval``s, at most its
        ``poll_max_total`` (never processed: REL-14); a delayed reply keeps it the delay; a held one until its
        ``t_send``. Only the console reads it (``progress``); a verdict never does."""
        acting = f"the DTS to {action.kind}" + (f" {action.type}/{action.function}" if action.type else "")
        scenario = self.scenario or {}
        rules = [r.get("then", {}) for r in scenario.get("rules", ())]
        delays = [t["seconds"] for t in rules if t.get("action") == "delay" and "seconds" in t]
        seconds, what = None, acting
        try:
            if scenario.get("pending_queries"):
                paced = (scenario["pending_queries"] + 1) * self.pixit_seconds("poll_interval_s")
                seconds, what = min((self.pixit_seconds("poll_max_total_s"), f"poll_max_total ({acting})"),
                                    (paced, f"{scenario['pending_queries'] + 1} queries at poll_interval ({acting})"))
            elif delays:
                seconds, what = max(delays), f"a reply delayed by the gateway ({acting})"
            elif any(t.get("action") == "hold" for t in rules):
                seconds, what = self.pixit_seconds("t_send_s"), f"t_send after a held request ({acting})"
        except (AttributeError, KeyError, TypeError, ValueError):   # a PIXIT the product did not give
            seconds, what = None, acting
        notify_waiting(self.spec.id, seconds, what)

    def journal(self) -> list[dict]:
        return self.driver.journal()

    def journal_of(self, submission: str) -> list[dict] | None:
        """SEC-06: the DTS's journal export for one submission; None where the driver cannot ask for it."""
        return self.driver.journal_of(submission)

    # --- restart, environment, amendments and cancellations (issue 6) ---------------------------
    def lodge_and_crash(self, sample: str, *, type: str, function: str = "8", when=None,
                        timeout: float = 30.0) -> None:
        """REL-09: the user lodges ``sample`` and the DTS is killed abruptly once ``when(requests)`` holds
        for this case's recorded requests, all of them (default: the gateway holds a request of this type
        and function unanswered), then started again over the same state folder. Ask ``resume`` next.
        A driver that cannot kill its product makes the case INCONCLUSIVE."""
        held = when or (lambda reqs: any(r.responded_at is None and (r.type, r.function) == (type, function)
                                         for r in reqs))
        if not hasattr(self._harness.driver, "perform_and_kill"):
            raise DriverInconclusive(f"the {getattr(self._harness.driver, 'name', '?')} driver cannot kill the "
                                     "product mid-action; REL-09 needs a kill and a restart")
        action = Action(kind="lodge", type=type, function=function, document=self.data.document(sample))
        self._announce_wait(action)
        self.record.status = Status.WAITING
        try:
            self.driver.perform_and_kill(action, lambda: held(self.requests()), timeout=timeout)
        except DriverInconclusive:
            raise
        except DriverError:
            # the moment never came because the gateway refused the lodgement: the case's set-up failed
            self.needs_recorded(self.requests(type=type, function=function), "the lodgement to interrupt")
            raise
        finally:
            self.record.status = Status.RUNNING

    def resume(self) -> Outcome:
        """After a restart, the DTS finishes what it was doing (REL-09): the ``resume`` user action."""
        return self._perform(Action(kind="resume"))

    def configure(self) -> Outcome:
        """The harness's settings applied (CAP-07); the Outcome is what the DTS shows about them."""
        return self._perform(Action(kind="configure"))

    def amend(self, declaration_number: str, *, type: str, sample: str, reason: str = "Sửa trị giá hóa đơn") -> Outcome:
        """The user amends declaration ``declaration_number`` (929/930 function 5, Table 6-2) with a complete
        replacement drawn from ``sample``."""
        from .change_documents import amendment

        document = amendment(self.data.document(sample), declaration_number, reason)
        return self._perform(Action(kind="lodge", type=type, function="5", document=document))

    def cancel(self, declaration_number: str, *, type: str, reason_code: str = "02",
               reason: str = "Khai trùng tờ khai") -> Outcome:
        """The user cancels declaration ``declaration_number`` (929/930 function 1, Table 6-2)."""
        from .change_documents import cancellation

        document = cancellation(declaration_number, reason_code, reason)
        return self._perform(Action(kind="lodge", type=type, function="1", document=document))

    def offers(self, action_name: str) -> bool:
        """Whether the product's driver offers the user action ``action_name`` at all (``sut.toml``)."""
        return self.driver.offers(action_name)

    # --- observation ------------------------------------------------------------------------
    def requests(self, *, type: str | None = None, function: str | None = None,
                 first_attempts: bool = False) -> list:
        """The ECDI ``Send`` exchanges the gateway recorded for this case, in arrival order.
        ``first_attempts``: one per message, its first attempt; a retransmission repeats the same
        message (REL-02), e.g. after an E9002 the gateway may answer when queries arrive close together.
        A request whose type and function the gateway could not read (a DOCTYPE, not XML, no readable
        ``Send``) is listed under every type and function: it may be any of them, and it was sent."""
        out = []
        for ex in self.gateway.exchanges(self.run_id):
            if ex.path.split("?")[0] != self.profile.deployment["cgw_path"] or ex.method != "POST":
                continue
            unread = ex.type is None and ex.function is None
            if type is not None and ex.type != type and not unread:
                continue
            if function is not None and ex.function != function and not unread:
                continue
            if first_attempts and ex.attempt != 1:
                continue
            out.append(ex)
        return out

    def answered_attempt(self, first, requirement: str):
        """The last attempt of ``first``'s message whose reply went out: the reply a DTS that timed out on the
        earlier ones (REL-01, REL-03) acted on (an abandoned attempt's row may still be in flight). When no
        attempt's reply could reach the DTS within its t_send, it never had the reply the case staged:
        INCONCLUSIVE on ``requirement``, and the case stops."""
        from .checks import reply_in_time
        same = [ex for ex in self.requests(type=first.type, function=first.function)
                if ex.message_id == first.message_id]
        t_send = self.pixit_seconds("t_send_s")
        self.check(reply_in_time(same, t_send, self.tolerance(t_send)), requirement, severity=Verdict.INCONCLUSIVE,
                   stop=True)
        answered = [ex for ex in same if ex.reply_text]
        return answered[-1] if answered else first

    def campaign_requests(self) -> list:
        """Every ECDI ``Send`` exchange the gateway recorded in this session so far, all cases together
        (this one included), in arrival order: what ENV-02 is checked over ("the whole test campaign")."""
        return [ex for ex in self.gateway.campaign_exchanges()
                if ex.path.split("?")[0] == self.profile.deployment["cgw_path"] and ex.method == "POST"]

    def needs_readable(self, requests: list, what: str = "the requests this case reads") -> None:
        """Set-up of a case that reads headers or puts faults on requests: the gateway could read each of
        ``requests`` (its scenario rules match type, function and attempt; a header can be judged). One it
        could not read (a DOCTYPE, not XML) is the case's FAIL if it declares what the refusing step
        detects (TXT-01, TXT-02, TRN-03…), else ``setup_failed``."""
        unread = [ex for ex in requests if ex.type is None and ex.function is None]
        if unread:
            self.needs_recorded(unread, what)

    def needs_recorded(self, requests: list, what: str = "the lodgement this case needs", *,
                       until: str | None = None, outcome: Outcome | None = None, judges: bool = True) -> None:
        """Set-up: ``requests`` (every attempt of a lodgement the case needs) reached the gateway and passed its
        own evaluation — up to step ``until`` (a ``REFUSING_STEPS`` name) when the case is about a later
        step's answer. A refusal at a step that detects a breach of one of the case's requirements FAILs the
        case on it; any other refusal, or no request at all, is ``setup_failed``. ``judges=False``: the case
        has judged what it requires of these requests itself, so a refusal (one step's S0005 may be about
        another requirement's field) is only a failed set-up."""
        if not requests:
            shown = f"the DTS reported {outcome.state!r}" if outcome is not None else "nothing reached the gateway"
            self.setup_failed("no request reached the gateway", what, shown)
        refusals = [(ex, r) for ex in requests if (r := gateway_refusal(ex, until)) is not None]
        if not refusals:
            return
        ex, (step, cause) = next(((e, r) for e, r in refusals if r[1][:1].isdigit()), refusals[0])
        code = cause.split()[-1]
        if not cause[:1].isdigit() and code in self.profile.result_codes:    # no reply reached the DTS
            cause = f"{sorted(self.profile.result_codes[code].functions)[0]} {code}"
        reason = (ex.gateway_verdict.get(step) or {}).get("reason") if isinstance(
            ex.gateway_verdict.get(step), dict) else None
        own = [r for r in REFUSING_STEPS.get(step, ()) if r in self.spec.requirements] if judges else []
        if own:
            self.check(Check(False, f"the gateway refused {what} (request #{ex.seq}): {cause} at its {step} "
                                    f"step" + (f": {reason}" if reason else "")), own[0], stop=True)
        self.setup_failed(cause, what, f"request #{ex.seq}, gateway step {step}" + (f": {reason}" if reason else ""))
