"""The wire evidence behind a verdict as HTML (secrets redacted), and the report's family/verdict filters."""

from __future__ import annotations

import html
import re

from lxml import etree

from ..codec.safexml import hardened_parser
from .wording import exchange_line, reply_words

_PASSWORD = re.compile(rb"(<(?:\w+:)?Password>)(.*?)(</(?:\w+:)?Password>)", re.S)
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


_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")


def _headers(headers: dict) -> str:
    return "\n".join(f"{k}: {'***' if k.lower() in _SECRET_HEADERS else v}" for k, v in (headers or {}).items())


def _gateway_said(ex) -> str:
    verdict = ex.gateway_verdict if isinstance(ex.gateway_verdict, dict) else {}
    step = verdict.get("failed_step")
    if not step:
        return "the gateway's own evaluation passed every step" if verdict else ""
    own = verdict.get(step) if isinstance(verdict.get(step), dict) else {}
    why = " ".join(str(own[k]) for k in ("code", "reason") if own.get(k))
    return f"the gateway refused it at its {step} step" + (f": {why}" if why else "")


def exchange_details(ex, profile, anchor: str, *, open_: bool = False) -> str:
    """One exchange, openable: request headers, the decoded message text, the gateway's reply (redacted)."""
    said = _gateway_said(ex)
    rule = f" Scenario rule applied: {html.escape(ex.rule)}." if ex.rule else ""
    return (
        f'<details class="ecdi-exchange" id="{html.escape(anchor)}"{" open" if open_ else ""}>'
        f"<summary>{html.escape(exchange_line(ex, profile))}</summary>"
        f"<p>{html.escape(said[:1].upper() + said[1:] + '.') if said else ''}{rule}</p>"
        f"<h5>Request headers</h5><pre>{html.escape(_headers(ex.request_headers))}</pre>"
        f"<h5>Request message text (MessageXML, decoded)</h5>"
        f"<pre>{html.escape(pretty(redact(ex.message_text or ex.request_body)))}</pre>"
        f"<h5>Gateway reply: {html.escape(reply_words(ex, profile))}</h5>"
        f"<pre>{html.escape(pretty(redact(ex.reply_text or ex.response_body)))}</pre></details>"
    )


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
