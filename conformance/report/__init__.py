"""Run outputs: results.json, the evidence bundle, evidence excerpts for the HTML report, the certificate."""

from .bundle import write_case_bundle
from .case_view import evidence_excerpt
from .evidence_view import report_filters
from .results import finish_outputs, write_outputs

__all__ = ["evidence_excerpt", "report_filters", "finish_outputs", "write_case_bundle", "write_outputs"]
