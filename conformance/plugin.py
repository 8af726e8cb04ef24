"""pytest plugin that runs ECDI conformance cases (loaded by ``ecdi run`` with ``-p conformance.plugin``).

pytest gives us collection, selection, fixtures, JUnit XML and pytest-html; our verdict model rides
on top: each case has a ``CaseRecord`` whose verdict decides the pytest outcome (never the other way
round), and the session ends by writing results.json and the certificate from those records.
"""

from __future__ import annotations

import contextlib
import html
import traceback
from pathlib import Path

import pytest

from . import lag, progress
from .case import CASE_MARK, CaseFailure, CaseSpec
from .claims import compare_claims
from .context import CaseContextBase, HarnessError
from .harness import HarnessOptions, SetupError
from .issuer import ENV_KEY, ENV_ROLE, ROLES, IssuerError, resolve_issuer
from .lanes import Campaign
from .parallel import Execution, Scheduler
from .party import party_of
from .report import evidence_excerpt, finish_outputs, report_filters, write_case_bundle, write_outputs
from .report.run_header import run_header
from .report.outputs import atomic_write
from .drivers.base import DriverError, DriverInconclusive
from .verdict import CaseRecord, EvidenceKind, Finding, Status, Verdict

_STATE = pytest.StashKey["RunState"]()


class RunState:
    def __init__(self, options: HarnessOptions):
        self.options = options
        self.harness: Harness | None = None
        self.setup_error: str | None = None
        self.records: dict[str, CaseRecord] = {}
        self.order: list[str] = []
        self.issuer = None
        self.interrupted = False
        self.exchanges: list = []            # every case's exchanges, for claimed vs exhibited
        self.claims_gap: str | None = None
        self.results: dict | None = None     # written at session finish, certified at unconfigure
        self.executions: dict = {}           # node id -> what its lane did (parallel.Execution)
        self.scheduler: Scheduler | None = None
        self.party = party_of(options)       # the party under test (party.py): its harness, context, cases


def pytest_addoption(parser):
    g = parser.getgroup("ecdi", "ECDI conformance")
    g.addoption("--ecdi-sut", default="reference", help="system under test (default: the reference DTS)")
    g.addoption("--ecdi-gateway", default=None,
                help="certify the gateway of this gateway statement (gateway.toml): the harness plays the DTS")
    g.addoption("--ecdi-mutant", default=None, help="run the reference DTS with this named defect")
    g.addoption("--ecdi-profile", default="ecdi-1.0", help="profile id (default ecdi-1.0)")
    g.addoption("--ecdi-time-scale", type=float, default=1.0, help="timer scale s, 0 < s <= 1 (spec §2.1)")
    g.addoption("--ecdi-out", default="out", help="output folder")
    g.addoption("--ecdi-seed", type=int, default=None, help="seed of the per-run test data")
    g.addoption("--ecdi-pki-dir", default=None, help="reuse a generated test PKI folder")
    g.addoption("--ecdi-case", action="append", default=[], help="run only this case id (repeatable)")
    g.addoption("--ecdi-jobs", type=int, default=None,
                help="cases run at once, each in its own gateway session and DTS (default: lanes.DEFAULT_JOBS, "
                     "at most the product's [driver] instances)")
    g.addoption("--ecdi-shared-gateway", default=None, help="base URL of a running `ecdi gateway` to use")
    g.addoption("--ecdi-control-token-file", default=None,
                help="file holding the shared gateway's control token (default: $ECDI_CONTROL_TOKEN)")
    g.addoption("--ecdi-issuer-key", default=None,
                help=f"PEM private key signing the certificate (env {ENV_KEY}; default: a local self-assessment key)")
    g.addoption("--ecdi-issuer-role", default=None, choices=ROLES,
                help=f"role of the issuer key: self-assessment or customs (env {ENV_ROLE})")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{CASE_MARK}(spec): an ECDI conformance case")
    opt = config.getoption
    options = HarnessOptions(
        sut=opt("--ecdi-sut"),
        mutant=opt("--ecdi-mutant"),
        profile_id=opt("--ecdi-profile"),
        time_scale=opt("--ecdi-time-scale"),
        out_dir=Path(opt("--ecdi-out")),
        seed=opt("--ecdi-seed"),
        pki_dir=Path(opt("--ecdi-pki-dir")) if opt("--ecdi-pki-dir") else None,
        jobs=opt("--ecdi-jobs"),
        gateway=Path(opt("--ecdi-gateway")) if opt("--ecdi-gateway") else None,
        shared_gateway=opt("--ecdi-shared-gateway"),
        control_token_file=opt("--ecdi-control-token-file"),
    )
    state = RunState(options)
    try:  # a customs key that cannot be used is a usage error before anything runs, never a late surprise
        state.issuer = resolve_issuer(options.out_dir / "work" / "issuer", opt("--ecdi-issuer-key"),
                                      opt("--ecdi-issuer-role"))
    except IssuerError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_STATE] = state
    if any(config.pluginmanager.hasplugin(name) for name in ("html", "pytest_html.plugin")):   # autoloaded, or named
        config.pluginmanager.register(_HtmlColumns(), "ecdi-html-columns")


def _spec(item) -> CaseSpec | None:
    mark = item.get_closest_marker(CASE_MARK)
    return mark.args[0] if mark else None


def pytest_collection_modifyitems(session, config, items):
    """``--ecdi-case`` selects cases by their ECDI case id; an unknown id is a usage error. Cases marked
    ``runs_last`` (they judge the whole campaign, ENV-02) run after every other case."""
    items.sort(key=lambda i: bool(getattr(getattr(i, "function", None), "ecdi_runs_last", False)))  # stable
    party = config.stash[_STATE].party.name          # a run collects only the cases of its party under test
    other = [i for i in items if _spec(i) and _spec(i).party != party]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [i for i in items if i not in other]
    wanted = set(config.getoption("--ecdi-case"))
    if not wanted:
        return
    known = {_spec(i).id for i in items if _spec(i)}
    unknown = wanted - known
    if unknown:
        raise pytest.UsageError(f"unknown case id(s): {', '.join(sorted(unknown))} (not cases of a {party} run); "
                                "see `ecdi cases`")
    keep = [i for i in items if _spec(i) and _spec(i).id in wanted]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


def pytest_collection_finish(session):
    """Records for the cases that will run (after any -k/-m deselection)."""
    state = session.config.stash[_STATE]
    for item in session.items:
        spec = _spec(item)
        if spec is None:
            continue
        state.records[item.nodeid] = CaseRecord(spec.id, spec.family_name, spec.purpose, list(spec.requirements))
        state.order.append(item.nodeid)


def pytest_sessionstart(session):
    state = session.config.stash[_STATE]
    harness = state.party.harness(state.options)
    try:
        harness.start()
    except SetupError as exc:
        state.setup_error = str(exc)
    except Exception as exc:  # noqa: BLE001 - any start-up fault becomes an ERROR verdict with its cause
        state.setup_error = f"{type(exc).__name__}: {exc}"
        atomic_write(state.options.out_dir / "setup-error.txt", traceback.format_exc())
    state.harness = harness


def pre_run_finding(spec: CaseSpec, profile, sut) -> Finding | None:
    """The verdict of a case decided before it runs (shared with ``ecdi replay``), or None."""
    unknown = [r for r in spec.requirements if r not in profile.requirements]
    if unknown and len(unknown) == len(spec.requirements) and all(_in_another_profile(r) for r in unknown):
        # a case of one profile's requirement only (SIG-06 in 1.0, SIG-07 in 1.1): nothing to judge here
        return Finding(Verdict.NOT_APPLICABLE, f"{', '.join(unknown)} is not a requirement of {profile.id}")
    if unknown:
        return Finding(Verdict.ERROR, f"case cites requirements not in {profile.id}: {unknown}")
    if spec.capability and spec.capability not in sut.capabilities:
        return Finding(Verdict.NOT_APPLICABLE, f"capability {spec.capability!r} is not claimed")
    return None


def _in_another_profile(requirement: str) -> bool:
    from .profile import list_profiles, load_profile

    return any(requirement in load_profile(p).requirements for p in list_profiles())


def unexpected_finding(exc: BaseException) -> Finding:
    """An exception other than a stopping check (shared with ``ecdi replay``).

    The driver could not make the product act or report: ERROR, never FAIL — the glue failed, not the
    product's ECDI behaviour — except silence from a manual operator, which proves nothing either way
    and is INCONCLUSIVE.
    """
    if isinstance(exc, DriverInconclusive):
        return Finding(Verdict.INCONCLUSIVE, f"driver: {exc}", evidence=EvidenceKind.OPERATOR)
    if isinstance(exc, DriverError):
        return Finding(Verdict.ERROR, f"driver error: {exc}", evidence=EvidenceKind.DRIVER)
    kind = "harness error" if isinstance(exc, HarnessError) else "unexpected error while running the case"
    return Finding(Verdict.ERROR, f"{kind}: {pytest.ExceptionInfo.from_exception(exc).exconly()}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """The cases run at once on the harness's lanes (``--ecdi-jobs``, ``parallel.py``); each then passes, in
    catalogue order, through pytest's run protocol, where the ``ecdi`` fixture and the call hand over
    what its lane found."""
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
    if session.config.option.collectonly:
        return True
    state = session.config.stash[_STATE]
    cases = [i for i in session.items if _spec(i) is not None]
    lanes = [None]
    if not state.setup_error and cases:
        try:
            lanes = state.harness.open_lanes(len(cases))
        except Exception as exc:  # noqa: BLE001 - every case then ERRORs with the cause
            state.setup_error = f"the lanes could not open: {type(exc).__name__}: {exc}"
    scheduler = Scheduler(cases, lanes, lambda item, lane: _execute(state, item, lane),
                          first=lambda i: getattr(i.function, "ecdi_runs_first", False),
                          on_start=lambda i: progress.notify_started(_spec(i).id),
                          on_end=lambda i, done: progress.notify_ended(_spec(i).id, done.seconds))
    state.executions = scheduler.results
    state.scheduler = scheduler
    if state.harness is not None:
        state.harness.campaign = Campaign([_spec(i).id for i in cases], [scheduler.ended[i.nodeid] for i in cases],
                                          scheduler.stopped)
    scheduler.start()
    try:
        for n, item in enumerate(session.items):
            scheduler.wait(item)
            nextitem = session.items[n + 1] if n + 1 < len(session.items) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
    finally:
        scheduler.stop()
    return True


def _execute(state, item, lane) -> Execution:
    """One case on ``lane`` (its thread): decided before it runs, or run on a fresh DTS state; while the
    harness's own lag is what made it INCONCLUSIVE (``CaseContext.disturbed``), run again, up to
    ``lag.RERUNS`` times, each attempt with a fresh DTS state and its own gateway case id. The attempts set
    aside are kept on the final record (``disturbed_attempts``) with their evidence ids."""
    spec = _spec(item)
    record = state.records[item.nodeid]
    if state.setup_error:
        record.record(Finding(Verdict.ERROR, f"the session could not start: {state.setup_error}"))
        return Execution(decided=True)
    decided = pre_run_finding(spec, lane.profile, lane.sut)
    if decided is not None:
        record.record(decided)
        return Execution(decided=True)
    lag.process_monitor()        # running before any timing window a case may judge
    record.status = Status.RUNNING
    lane.case_id = spec.id       # whose campaign the lane's gateway client reads (lanes.Campaign)
    ctx = state.party.context(spec, record, lane)
    try:
        state.party.start_case(ctx, lane)
    except Exception as exc:  # noqa: BLE001 - the case's set-up failed: ERROR with its cause
        return Execution(ctx=ctx, setup_error=exc)
    done = _attempts(state, item, lane, ctx)
    try:
        _conclude(state, done)
    except Exception as exc:  # noqa: BLE001 - e.g. its bundle could not be written: the run says so
        done.ctx.record.record(Finding(Verdict.ERROR, f"harness error: the case's evidence could not be kept: "
                                                      f"{type(exc).__name__}: {exc}"))
        done.ctx.record.finish()
    return done


def _attempts(state, item, lane, ctx: CaseContext) -> Execution:
    """The case's body, re-run while the harness's lag disturbed it (see ``_execute``), each re-run alone on
    the harness (``Scheduler.alone``); the DTS stopped after."""
    spec = ctx.spec
    set_aside: list[dict] = []
    quiet, alone = contextlib.ExitStack(), False
    try:
        while True:
            try:
                item.obj(ecdi=ctx)
                stopped = None
            except CaseFailure as exc:
                stopped = exc
            except Exception as exc:  # noqa: BLE001 - reported by pytest_runtest_makereport
                return Execution(ctx=ctx, raised=exc)
            if not (ctx.disturbed and ctx.record.verdict is Verdict.INCONCLUSIVE) or ctx.attempt > lag.RERUNS:
                ctx.record.attempts = set_aside
                return Execution(ctx=ctx, raised=stopped)
            set_aside.append({"attempt": ctx.attempt, "gateway_case_id": ctx.run_id, "reason": ctx.record.reason})
            state.party.end_case(lane)
            if state.scheduler is not None and not alone:
                quiet.enter_context(state.scheduler.alone())
                alone = True
            record = CaseRecord(spec.id, spec.family_name, spec.purpose, list(spec.requirements), status=Status.RUNNING)
            state.records[item.nodeid] = record
            ctx = state.party.context(spec, record, lane, attempt=ctx.attempt + 1)
            try:
                state.party.start_case(ctx, lane)
            except Exception as exc:  # noqa: BLE001 - as a fault of the case's call
                return Execution(ctx=ctx, raised=exc)
    finally:
        state.party.end_case(lane)
        quiet.close()


def _conclude(state, done: Execution) -> None:
    """The verdict is final once the case has ended: recorded, its bundle written, its exchanges read (claimed
    vs exhibited) and its report excerpt made, on its lane; the report only shows them (``_report``)."""
    ctx, record = done.ctx, done.ctx.record
    if done.raised is not None and not isinstance(done.raised, CaseFailure):
        record.record(unexpected_finding(done.raised))
    record.finish()
    ctx.tape.closed = True  # the report's own reads below are not part of the case
    write_case_bundle(state.options.out_dir, record, ctx)
    try:
        state.exchanges.extend(ctx.gateway.exchanges(ctx.run_id))  # for claimed vs exhibited
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the claims section says what is missing
        state.claims_gap = f"exchanges of {record.case_id} unavailable: {exc}"
    ctx.excerpt = evidence_excerpt(record, ctx)


@pytest.fixture
def ecdi(request):
    """The case context as its lane left it; a case decided before it ran is skipped with its verdict's reason."""
    state = request.config.stash[_STATE]
    done = state.executions[request.node.nodeid]
    if done.decided:
        pytest.skip(state.records[request.node.nodeid].reason)
    if done.setup_error is not None:
        raise done.setup_error
    return done.ctx


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """The case body already ran on its lane: what it raised is raised here, for the report."""
    ctx = pyfuncitem.funcargs.get("ecdi")
    if not isinstance(ctx, CaseContextBase):
        return None
    raised = pyfuncitem.config.stash[_STATE].executions[pyfuncitem.nodeid].raised
    if raised is not None:
        raise raised
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    state = item.config.stash[_STATE]
    record = state.records.get(item.nodeid)
    if record is None:
        return
    if call.when == "call" and record.status is Status.FINISHED:     # concluded on its lane
        rep.duration = state.executions[item.nodeid].seconds        # JUnit's and the HTML's time: the lane's
        _report(rep, record, item)
    elif record.status is Status.FINISHED:
        return
    elif call.when == "setup" and rep.skipped and record.verdict is not None:
        record.finish()
        _report(rep, record, item)
    elif call.when == "setup" and rep.failed:
        record.record(Finding(Verdict.ERROR, f"case set-up failed: {call.excinfo.exconly() if call.excinfo else rep.longreprtext}"))
        record.finish()
        _report(rep, record, item)


def _report(rep, record: CaseRecord, item) -> None:
    """The pytest report of a finished case: its verdict as the outcome, requirement columns, evidence excerpt."""
    verdict = record.verdict
    props = [
        ("ecdi_case", record.case_id),
        ("family", record.family),
        ("requirements", " ".join(record.requirements)),
        ("verdict", verdict.value),
        ("evidence", " ".join(record.evidence_kinds)),
        # the test certificate(s) the verdict was obtained with, as results.json's ``certificates``
        ("certificates", ", ".join(record.as_dict().get("certificates", ["declarant"]))),
    ]
    rep.user_properties.extend(props)   # this report's HTML row
    item.user_properties.extend(props)  # JUnit XML reads them from the teardown report
    if verdict is Verdict.PASS:
        rep.outcome, rep.longrepr = "passed", None
    elif verdict is Verdict.NOT_APPLICABLE:
        rep.outcome, rep.longrepr = "skipped", (str(item.path), item.location[1] or 0, f"NOT-APPLICABLE: {record.reason}")
    else:
        rep.outcome, rep.longrepr = "failed", f"{verdict.value}: {record.reason}"
    ctx = item.funcargs.get("ecdi") if hasattr(item, "funcargs") else None
    extras = getattr(rep, "extras", [])
    try:
        import pytest_html

        extras.append(pytest_html.extras.html(getattr(ctx, "excerpt", None) or evidence_excerpt(record, ctx)))
        rep.extras = extras
    except ImportError:
        pass


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash[_STATE]
    state.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    for nodeid in state.order:
        record = state.records[nodeid]
        if record.status is not Status.FINISHED:
            state.interrupted = True
            record.record(Finding(Verdict.ERROR, "the case did not run to completion (interrupted or deselected)"))
            record.finish()
    harness = state.harness
    try:
        if harness is not None:  # first, so the evidence log is complete before its head is read
            harness.stop()
    finally:
        if state.order:
            state.results = write_outputs(state.options.out_dir, harness, [state.records[n] for n in state.order],
                                          state.setup_error, interrupted=state.interrupted, claims=_claims(state))


def pytest_unconfigure(config):
    """After pytest-html and JUnit wrote their files (their ``pytest_sessionfinish``): publish the staged
    outputs, then the certificate, last of all."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        finish_outputs(state.options.out_dir, state.results, issuer=state.issuer, interrupted=state.interrupted)


def _claims(state) -> dict | None:
    """Capabilities claimed but never exhibited on the wire, and exhibited but not claimed (CAP-04)."""
    harness = state.harness
    if harness is None or not getattr(harness, "prepared", False) or not state.party.compares_claims:
        return None
    report = compare_claims(state.exchanges, harness.sut.capabilities, harness.profile).as_dict()
    if state.claims_gap:
        report["incomplete"] = state.claims_gap
    return report


class _HtmlColumns:
    """Requirement IDs and verdict as columns of the pytest-html table; the run's verdict at its head."""

    def pytest_html_report_title(self, report):
        report.title = "ECDI conformance report"
        report.set_data("environment", {})   # pytest's own (plugins, pluggy): the header says what matters

    def pytest_html_results_table_header(self, cells):
        cells[:] = [c for c in cells if ">Links<" not in c]   # no case has links: its evidence is in the row
        cells.insert(1, '<th class="sortable" data-column-type="case">Case</th>')
        cells.insert(2, '<th class="sortable" data-column-type="family">Family</th>')
        cells.insert(3, "<th>Requirements</th>")
        cells.insert(4, '<th class="sortable" data-column-type="verdict">Verdict</th>')
        cells.insert(5, '<th class="sortable" data-column-type="certificates">Certificates</th>')

    def pytest_html_results_table_row(self, report, cells):
        cells[:] = [c for c in cells if "col-links" not in c]
        props = dict(report.user_properties)
        verdict = props.get("verdict", "")
        cells.insert(1, f'<td class="col-case">{html.escape(props.get("ecdi_case", ""))}</td>')
        cells.insert(2, f'<td class="col-family">{html.escape(props.get("family", ""))}</td>')
        cells.insert(3, f'<td class="col-req">{html.escape(props.get("requirements", ""))}</td>')
        cells.insert(4, f'<td class="col-verdict verdict-{html.escape(verdict)}">{html.escape(verdict)}</td>')
        cells.insert(5, f'<td class="col-certificates">{html.escape(props.get("certificates", ""))}</td>')

    def pytest_html_results_table_html(self, report, data):
        """The verdict line is the row's detail already; the log keeps only captured output, if any."""
        verdict_line = html.escape(report.longreprtext) + "\n" if report.longreprtext else None
        data[:] = [d for d in data if d not in (verdict_line, "No log output captured.")]

    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        """The overall verdict (our ``pytest_sessionfinish`` ran first: pytest-html's is trylast), and
        filters by family and verdict (pytest-html's own filters know only pytest outcomes)."""
        state = session.config.stash[_STATE]
        try:
            prefix.append(run_header(state.results))
        except Exception as exc:  # noqa: BLE001 - the report is still written; results.json holds the verdict
            prefix.append(f"<p>The run's header could not be drawn ({html.escape(repr(exc))}): see results.json.</p>")
        families = sorted({r.family for r in state.records.values()})
        postfix.append(report_filters(families, [v.value for v in Verdict]))
