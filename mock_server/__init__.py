"""The mock customs gateway (CGW) the harness plays when it tests a DTS.

Real in every part a DTS can observe — SOAP framing, Table 7-3 evaluation, signed replies,
histories, evidence — with fault injection driven by scenarios (data, see ``scenario.py``).
It never imports cases, drivers, the reference DTS or the pytest plugin (docs/contracts.md);
cases reach it only through ``conformance.gateway_control``.
"""

from .config import Account, GatewayConfig

__all__ = ["Account", "Gateway", "GatewayConfig", "RunningGateway", "run_in_thread"]


def __getattr__(name: str):
    """The server (aiohttp and the pipeline) is imported when first asked for: a run on a shared gateway
    reads its evidence with ``evidence_slice`` and never serves."""
    if name in ("Gateway", "RunningGateway", "run_in_thread"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
