"""A vendor's glue, as small as it gets, around the reference DTS: the request JSON of docs/drivers.md in,
the Outcome JSON out. The HTTP test's automation endpoint and the command driver's server mode share it.

Run as a program it is a server-mode product (``[driver] server``): one request per stdin line, one answer per
stdout line, until stdin closes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

from conformance.drivers import Action, Environment
from conformance.drivers.base import LocalAccount
from conformance.drivers.reference import ReferenceDriver

KNOWN = {f.name for f in fields(Environment)} - {"accounts"}
FIELDS = {"tls_ca": "tls_ca_pem", "sign_anchor": "sign_anchor_pem", "ca_trust_list": "ca_trust_list_pem",
          "profile": "profile_id"}


def environment_from_json(environment: dict) -> Environment:
    """The request's ``environment`` member as the reference DTS's settings."""
    env = {FIELDS.get(k, k): v for k, v in environment.items() if FIELDS.get(k, k) in KNOWN}
    env.update(time_scale=float(env["time_scale"]), work_dir=Path(env["work_dir"]),
               accounts=tuple(LocalAccount(**a) for a in environment.get("accounts", [])))
    return Environment(**env)


def action_from_json(request: dict) -> Action:
    """The user action a request asks for (``amend`` is a lodge of function 5: the request says which)."""
    name = request["action"]
    if name in ("configure", "query", "resume"):
        kind = name
    else:
        kind = "lodge"
    document = request.get("document")
    return Action(kind=kind, type=request.get("type"), function=request.get("function") or "8",
                  document=document.encode("utf-8") if document is not None else None,
                  submission_id=request.get("submission"), otp=request.get("otp"), user=request.get("user"))


def outcome_json(outcome, name: str) -> str:
    return json.dumps({**asdict(outcome), "action": name}, ensure_ascii=False)


def serve(lines, out) -> None:
    """Server mode: (re)start the DTS over the request's environment when it changes or at ``configure`` (a
    process started again after a kill gets the next request straight away), then act and answer one line."""
    dts, current = ReferenceDriver(), None
    for line in lines:
        request = json.loads(line)
        if request["action"] == "configure" or request["environment"] != current:
            dts.start(environment_from_json(request["environment"]))
            current = request["environment"]
        if request["action"] == "journal":
            answer = json.dumps(dts.journal(), ensure_ascii=False)
        else:
            answer = outcome_json(dts.perform(action_from_json(request)), request["action"])
        print(answer, file=out, flush=True)


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
