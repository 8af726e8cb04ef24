"""The reference DTS: a correct ECDI declarant terminal, the harness's default system under test.

It meets the gateway only on the wire: this package imports ``conformance.profile`` and
``conformance.codec`` and never ``mock_server`` (docs/contracts.md). Start at ``dts.py``.
"""

from .config import DtsConfig, reference_statement
from .dts import ReferenceDTS, SubmissionReport
from .journal import Notification
from .mutants import MUTANTS, Mutant, build_dts

__all__ = [
    "DtsConfig", "ReferenceDTS", "SubmissionReport", "Notification", "build_dts", "MUTANTS", "Mutant",
    "reference_statement",
]
