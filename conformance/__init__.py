"""ECDI Conformance: a harness that certifies declarant terminal software (DTS) against ECDI.

Layers (see docs/architecture.md): profile -> codec -> gateway (mock_server) / drivers -> cases -> reports.
"""

__version__ = "0.1.0"
