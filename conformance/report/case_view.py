"""One case's row detail in report.html: for a case that did not pass, what was expected, what was
observed and the exchanges the failure names, openable, so the page needs no other file to be read."""

from __future__ import annotations

import html
from urllib.parse import quote

from ..verdict import Verdict
from .evidence_view import exchange_details
from .wording import codes_named, exchange_line, exchange_refs, readable

MAX_OPEN = 6      # exchanges shown in full per case; the others are listed one line each
_NOT_JUDGED = {
    Verdict.INCONCLUSIVE: "The harness could not judge this: an INCONCLUSIVE verdict is no failure of the "
                          "product, but the case must pass before conformance can be stated.",
    Verdict.ERROR: "The harness or the product's driver failed before the case could judge the product.",
}


def evidence_link(case_id: str) -> str:
    """The case's record and tape in the evidence bundle, relative to report.html."""
    return f"evidence/cases/{quote(case_id)}.json"


def anchor(case_id: str, seq: int) -> str:
    return f"ex-{case_id}-{seq}"


def _requirement(profile, rid: str | None) -> str:
    if not rid:
        return "the case as a whole"
    req = profile.requirements.get(rid) if profile is not None else None
    return f"{rid} ({req.level}): {req.summary}" if req else rid


def _expected(finding, profile) -> str:
    if finding.expected:
        return finding.expected
    req = profile.requirements.get(finding.requirement) if profile is not None and finding.requirement else None
    if req:
        return f"what {req.id} requires: {req.summary}"
    return "the case runs to a verdict on the product"


def _problem(finding, profile) -> str:
    """Expected vs observed of one finding that did not pass."""
    e = html.escape
    rows = [("Requirement", _requirement(profile, finding.requirement)),
            ("Expected", _expected(finding, profile)),
            ("Observed", finding.observed or readable(finding.message)),
            ("Evidence", finding.evidence.value)]
    codes = codes_named(" ".join(v for _, v in rows), profile)
    if codes:
        rows.append(("Codes", "; ".join(codes)))
    refs = exchange_refs(finding)
    if refs:
        rows.append(("Exchanges", ", ".join(f"#{n}" for n in refs)))
    note = _NOT_JUDGED.get(finding.verdict)
    body = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return (f'<div class="ecdi-problem verdict-{e(finding.verdict.value)}"><h4>{e(finding.verdict.value)}</h4>'
            f"<dl>{body}</dl>" + (f'<p class="ecdi-note">{e(note)}</p>' if note else "") + "</div>")


def _finding_line(finding) -> str:
    e = html.escape
    label = "SHOULD not met" if finding.advisory else finding.verdict.value
    return (f'<li class="verdict-{e(finding.verdict.value)}"><span class="ecdi-badge">{e(label)}</span> '
            f"{e(finding.requirement or 'case')} · {e(finding.evidence.value)} — {e(readable(finding.message))}</li>")


def problems(record) -> list:
    """The findings that made the verdict: every non-advisory one worse than PASS."""
    return [f for f in record.findings if not f.advisory and f.verdict.rank > Verdict.PASS.rank]


def shown_exchanges(record, exchanges: list) -> tuple[list, str]:
    """The exchanges to open in full, and how they were chosen: those the failing findings name, else
    (a failure naming none) the case's last ones."""
    by_seq = {ex.seq: ex for ex in exchanges}
    named = [by_seq[n] for f in problems(record) for n in exchange_refs(f) if n in by_seq]
    named = list({ex.seq: ex for ex in named}.values())[:MAX_OPEN]
    if named:
        return named, "the exchanges the failure names"
    if len(exchanges) <= MAX_OPEN:
        return exchanges, "every exchange of the case"
    return exchanges[-MAX_OPEN:], f"the failure names no exchange: the last {MAX_OPEN} of the case"


def _exchange_list(record, exchanges: list, opened: list, profile) -> str:
    e = html.escape
    opened_seqs = {ex.seq for ex in opened}
    items = "".join(
        f'<li><a href="#{e(anchor(record.case_id, ex.seq))}">{e(exchange_line(ex, profile))}</a></li>'
        if ex.seq in opened_seqs else f"<li>{e(exchange_line(ex, profile))}</li>" for ex in exchanges)
    return (f'<details class="ecdi-all"><summary>All {len(exchanges)} exchange(s) of this case</summary>'
            f"<ol>{items}</ol><p>Every octet of each: <a href=\"{e(evidence_link(record.case_id))}\">"
            f"{e(evidence_link(record.case_id))}</a> (the case's record and tape) and the evidence log "
            f"evidence/evidence.sqlite3 (<code>ecdi evidence</code>).</p></details>")


def case_detail(record, exchanges: list, profile, *, unavailable: str | None = None) -> str:
    """The HTML shown under a case's row of the report."""
    e = html.escape
    parts = [f'<div class="ecdi-case"><p><b>Purpose:</b> {e(record.purpose)}</p>']
    failing = problems(record)
    parts += [_problem(f, profile) for f in failing]
    if record.attempts:
        parts.append(f"<p>Run {len(record.attempts) + 1} times: {len(record.attempts)} earlier attempt(s) were set "
                     f"aside as disturbed by the harness's own lag ({e(readable(record.attempts[0]['reason']))}).</p>")
    parts.append("<h4>Findings</h4><ul class=\"ecdi-findings\">" + "".join(map(_finding_line, record.findings))
                 + "</ul>")
    if unavailable:
        parts.append(f"<p>Exchanges unavailable: {e(unavailable)}</p>")
    if exchanges:
        if failing:
            opened, why = shown_exchanges(record, exchanges)
            parts.append(f"<h4>Exchanges involved ({e(why)})</h4>")
            parts += [exchange_details(ex, profile, anchor(record.case_id, ex.seq)) for ex in opened]
        else:
            opened = []
        parts.append(_exchange_list(record, exchanges, opened, profile))
    parts.append("</div>")
    return "".join(parts)


def evidence_excerpt(record, ctx) -> str:
    """``case_detail`` for a finished case; ``ctx`` None when the case never ran (no exchanges)."""
    if ctx is None:
        return case_detail(record, [], None)
    try:
        exchanges = ctx.gateway.exchanges(ctx.run_id)   # the last attempt of a case re-run for lag
    except Exception as exc:  # noqa: BLE001 - a report must still be written
        return case_detail(record, [], ctx.profile, unavailable=str(exc))
    return case_detail(record, exchanges, ctx.profile)
