"""The mock customs gateway (CGW) the harness plays when it tests a DTS.

Real in every part a DTS can observe — SOAP framing, Table 7-3 evaluation, signed replies,
histories, evidence — with fault injection driven by scenarios (data, see ``scenario.py``).
It never imports cases, drivers, the reference DTS or the pytest plugin (docs/contracts.md);
cases reach it only through ``conformance.gateway_control``.
"""

from .app import Gateway, RunningGateway, run_in_thread
from .config import Account, GatewayConfig

__all__ = ["Account", "Gateway", "GatewayConfig", "RunningGateway", "run_in_thread"]
