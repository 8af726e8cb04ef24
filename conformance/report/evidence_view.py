"""An excerpt of the wire evidence behind a verdict, for the pytest-html row (secrets redacted)."""

from __future__ import annotations

import html
import re

from lxml import etree

from ..codec.safexml import hardened_parser

_PASSWORD = re.compile(rb"(<(?:\w+:)?Password>)(.*?)(</(?:\w+:)?Password>)", re.S)
MAX_EXCHANGES = 6
MAX_CHARS = 6000


def redact(body: bytes) -> bytes:
    """The SOAP Password never appears in a report (SEC-01 applies to the harness's outputs too)."""
    return _PASSWORD.sub(rb"\1***\3", body or b"")


def pretty(text: bytes | None) -> str:
    if not text:
        return ""
    try:
        root = etree.fromstring(text, hardened_parser())
        out = etree.tostring(root, pretty_print=True, encoding="unicode")
    except etree.XMLSyntaxError:
        out = text.decode("utf-8", "replace")
    return out if len(out) <= MAX_CHARS else out[:MAX_CHARS] + "\n… (truncated; the evidence log holds all octets)"


def evidence_excerpt(record, ctx) -> str:
    parts = ['<div class="ecdi-evidence">']
    parts.append(f"<p><b>Purpose:</b> {html.escape(record.purpose)}</p><ul>")
    for f in record.findings:
        parts.append(
            f"<li><b>{html.escape(f.verdict.value)}</b> [{html.escape(f.requirement or '-')}; "
            f"{html.escape(f.evidence.value)}] {html.escape(f.message)}</li>"
        )
    parts.append("</ul>")
    exchanges = []
    if ctx is not None:
        try:
            exchanges = ctx.gateway.exchanges(ctx.run_id)   # the last attempt of a case re-run for lag
        except Exception as exc:  # noqa: BLE001 - a report must still be written
            parts.append(f"<p>Evidence unavailable: {html.escape(str(exc))}</p>")
    for ex in exchanges[:MAX_EXCHANGES]:
        parts.append(
            f"<details><summary>#{ex.seq} {html.escape(ex.method)} {html.escape(ex.path)} "
            f"type={html.escape(str(ex.type))} function={html.escape(str(ex.function))} "
            f"attempt={ex.attempt} → HTTP {ex.response_status} reply {html.escape(str(ex.reply_function))} "
            f"{html.escape(' '.join(ex.reply_codes))}</summary>"
            f"<p>Request message text:</p><pre>{html.escape(pretty(ex.message_text))}</pre>"
            f"<p>Reply message text:</p><pre>{html.escape(pretty(ex.reply_text))}</pre></details>"
        )
    if len(exchanges) > MAX_EXCHANGES:
        parts.append(f"<p>… {len(exchanges) - MAX_EXCHANGES} more exchanges in the evidence log.</p>")
    parts.append("</div>")
    return "".join(parts)


_FILTER_SCRIPT = """<script>
document.addEventListener("DOMContentLoaded", function () {
  function apply() {
    var fam = document.getElementById("ecdi-family").value, ver = document.getElementById("ecdi-verdict").value;
    document.querySelectorAll("#results-table tbody.results-table-row").forEach(function (row) {
      var f = row.querySelector("td.col-family"), v = row.querySelector("td.col-verdict");
      if (!f || !v) { return; }
      var show = (!fam || f.textContent.trim() === fam) && (!ver || v.textContent.trim() === ver);
      row.style.display = show ? "" : "none";
    });
  }
  document.getElementById("ecdi-family").addEventListener("change", apply);
  document.getElementById("ecdi-verdict").addEventListener("change", apply);
  new MutationObserver(apply).observe(document.getElementById("results-table"), {childList: true});
  apply();
});
</script>"""


def report_filters(families: list[str], verdicts: list[str]) -> str:
    """Two selects that hide report rows by ECDI family and verdict; re-applied when pytest-html redraws."""
    def options(values):
        return "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
    return (f'<p class="ecdi-filters">Family: <select id="ecdi-family"><option value="">all</option>{options(families)}'
            f'</select> Verdict: <select id="ecdi-verdict"><option value="">all</option>{options(verdicts)}</select></p>'
            + _FILTER_SCRIPT)
