"""Run outputs: results.json (machine-readable), evidence excerpts for the HTML report, the certificate."""

from .evidence_view import evidence_excerpt
from .results import write_outputs

__all__ = ["evidence_excerpt", "write_outputs"]
