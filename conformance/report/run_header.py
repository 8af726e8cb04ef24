"""The head of report.html: the run's overall verdict, counts and facts, and links to its other outputs.

Rendered from results.json's content (``build_results``), which the plugin has at session finish, before
pytest-html writes the page; the style sheet that keeps the page readable at 900 px and in print rides along.
"""

from __future__ import annotations

import html
import platform

from ..verdict import Verdict
from .results import CONFORMANT, INCOMPLETE, INTERRUPTED, NOT_CONFORMANT, certifiable

MEANING = {
    CONFORMANT: "every applicable case of the catalogue ran and passed",
    NOT_CONFORMANT: "at least one case that ran did not pass: see the cases below",
    INCOMPLETE: "every case that ran passed, but not every applicable case ran: no statement of conformance",
    INTERRUPTED: "the run was stopped before every selected case finished: no statement of conformance",
}
ORDER = [Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE, Verdict.PASS, Verdict.NOT_APPLICABLE]
LINKS = (("certificate.html", "certificate"), ("results.json", "results.json"),
         ("evidence/", "evidence bundle"), ("evidence/manifest.json", "its manifest"), ("junit.xml", "JUnit XML"))


def counts(results: dict) -> str:
    summary = results.get("summary") or {}
    scope = results.get("scope") or {}
    shown = ", ".join(f"{summary[v.value]} {v.value}" for v in ORDER if summary.get(v.value))
    ran = f"{scope.get('executed', len(results.get('cases', [])))} case(s) run"
    if scope.get("applicable"):
        ran += f" of {scope['applicable']} applicable"
    return f"{ran}: {shown or 'none'}"


def facts(results: dict) -> list[tuple[str, str]]:
    sut = results.get("sut") or {}
    profile = results.get("profile") or {}
    evidence = results.get("evidence") or {}
    scale = results.get("time_scale")
    product = " ".join(str(x) for x in (sut.get("product"), sut.get("version")) if x) or "not known"
    if sut.get("mutant"):
        product += f" (reference DTS with the defect “{sut['mutant']}”)"
    party = results.get("party", "DTS")
    tested = ("CGW (customs gateway, the harness played the DTS)" if party == "CGW"
              else "DTS (declarant terminal software, the harness played the CGW)")
    if results.get("gateway"):
        tested += f" at {results['gateway'].get('endpoint')}"
    return [
        ("Party tested", tested),
        ("Product", product),
        ("Vendor", f"{sut.get('vendor') or 'not known'}" +
         (f", tax code {sut['vendor_tax_code']}" if sut.get("vendor_tax_code") else "")),
        ("Build", sut.get("build_hash") or "not stated by the product"),
        ("Profile", f"{profile.get('id', 'not known')}" +
         (f" (version {profile['version']}, hash {str(profile.get('hash') or '')[:16]}…)" if profile.get("version")
          else "")),
        ("Time scale", f"{scale}" + (" (scaled timers: a self-test, §2.1)" if isinstance(scale, (int, float))
                                     and scale < 1 else "")),
        ("Seed", str(results.get("seed", "not known"))),
        ("Started", results.get("started_at") or "—"),
        ("Finished", results.get("finished_at") or "—"),
        ("Evidence log", f"{evidence.get('rows')} rows, chain head {str(evidence.get('head_hash') or '')[:16]}…"
         if evidence.get("head_hash") else "not readable"),
    ]


def _notes(results: dict) -> list[str]:
    out = []
    if results.get("setup_error"):
        out.append(f"The session could not start: {results['setup_error']}")
    for cause, cases in (results.get("setup_failures") or {}).items():
        out.append(f"Set-up failed with {cause} in {len(cases)} case(s): {', '.join(cases)}")
    missing = (results.get("scope") or {}).get("missing") or []
    if missing:
        out.append(f"{len(missing)} applicable case(s) did not run in this run (e.g. {', '.join(missing[:3])})")
    return out


def run_header(results: dict | None) -> str:
    """The header's HTML; it links only the outputs that will stand beside report.html (no certificate or
    evidence bundle for a session that never started)."""
    e = html.escape
    if results is None:
        return STYLE + ('<section id="ecdi-run"><h2 class="ecdi-overall">NO RESULT</h2>'
                        "<p>The session stopped before any case was recorded.</p></section>")
    overall = results.get("overall", INTERRUPTED)
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts(results))
    links = " · ".join(f'<a href="{e(href)}">{e(name)}</a>' for href, name in LINKS
                       if certifiable(results) or not (href.startswith("evidence") or href.startswith("cert")))
    notes = "".join(f"<li>{e(n)}</li>" for n in _notes(results))
    harness = results.get("harness") or {}
    return STYLE + (
        f'<section id="ecdi-run" class="ecdi-run overall-{e(overall.replace(" ", "-"))}">'
        f'<h2 class="ecdi-overall">{e(overall)}</h2><p class="ecdi-meaning">{e(MEANING.get(overall, ""))}</p>'
        f'<p class="ecdi-counts">{e(counts(results))}</p><dl class="ecdi-facts">{rows}</dl>'
        + (f'<ul class="ecdi-notes">{notes}</ul>' if notes else "")
        + f'<p class="ecdi-links">Other outputs of this run: {links}</p>'
        f'<p class="ecdi-harness">{e(harness.get("name", "harness"))} {e(harness.get("version", ""))} on Python '
        f"{e(platform.python_version())}, {e(platform.system())}</p></section>")


STYLE = """<style>
body { color: #222; min-width: 0; max-width: 1400px; }
#environment-header, #environment { display: none; }
#ecdi-run { border: 2px solid #555; padding: 8px 12px; margin: 8px 0 12px; }
#ecdi-run.overall-CONFORMANT { border-color: #1a7f37; }
#ecdi-run.overall-NOT-CONFORMANT { border-color: #b00020; }
.ecdi-overall { font-size: 22px; margin: 0; }
.overall-CONFORMANT .ecdi-overall { color: #1a7f37; }
.overall-NOT-CONFORMANT .ecdi-overall { color: #b00020; }
.ecdi-counts { font-size: 14px; font-weight: bold; }
.ecdi-facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
.ecdi-facts dt, .ecdi-problem dt { font-weight: bold; color: #222; }
.ecdi-facts dd, .ecdi-problem dd { margin: 0; color: #222; overflow-wrap: anywhere; }
.ecdi-harness { color: #555; font-size: 11px; }
#results-table { color: #222; }
#results-table td { overflow-wrap: break-word; }
#results-table td.col-testId { font-size: 11px; overflow-wrap: anywhere; }
#ecdi-run a, .ecdi-case a { color: #0b4f9c; }
.ecdi-case { color: #222; font-size: 13px; }
.ecdi-case h4 { margin: 10px 0 4px; }
.ecdi-problem { border-left: 4px solid #b00020; padding: 4px 10px; margin: 6px 0; background: #fff5f5; }
.ecdi-problem.verdict-INCONCLUSIVE { border-color: #9a6700; background: #fffbea; }
.ecdi-problem h4 { margin: 0 0 4px; }
.ecdi-problem dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
.ecdi-note { font-style: italic; }
.ecdi-findings li { color: #222; }
.ecdi-badge { font-weight: bold; }
.ecdi-findings .verdict-PASS .ecdi-badge, .col-verdict.verdict-PASS { color: #1a7f37; }
.ecdi-findings .verdict-FAIL .ecdi-badge, .ecdi-findings .verdict-ERROR .ecdi-badge,
.col-verdict.verdict-FAIL, .col-verdict.verdict-ERROR { color: #b00020; font-weight: bold; }
.ecdi-findings .verdict-INCONCLUSIVE .ecdi-badge, .col-verdict.verdict-INCONCLUSIVE { color: #9a6700; }
.ecdi-exchange { border: 1px solid #ccc; margin: 4px 0; padding: 2px 6px; }
.ecdi-exchange summary, .ecdi-all summary { cursor: pointer; color: #0b4f9c; }
.ecdi-case pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f4f4; color: #111;
                 padding: 4px; max-height: 400px; overflow-y: auto; }
.logwrapper:not(:has(.log)) { display: none; }
@media print {
  body { max-width: none; font-size: 10px; }
  .controls, .filter, .ecdi-filters, .summary__reload, .logwrapper { display: none !important; }
  tbody.results-table-row { break-inside: avoid-page; }
  .ecdi-case pre { max-height: none; overflow: visible; }
  a { color: #222; }
}
</style>"""
