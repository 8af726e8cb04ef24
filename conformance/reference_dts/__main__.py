"""The reference DTS as an external program, speaking the command driver's protocol (docs/drivers.md).

    python -m conformance.reference_dts configure --work-dir DIR --endpoint URL ... (settings, CAP-07)
    python -m conformance.reference_dts lodge|amend|cancel --work-dir DIR --document F --type 929 --function 8
    python -m conformance.reference_dts query --work-dir DIR --submission MESSAGE-ID
    python -m conformance.reference_dts pay-create --work-dir DIR --document F [--user U --user-id ID]
    python -m conformance.reference_dts pay-approve|request-otp --work-dir DIR --submission ORDER-ID [--otp N]
    python -m conformance.reference_dts resume --work-dir DIR            (after a restart, REL-09)
    python -m conformance.reference_dts journal --work-dir DIR            (SEC-06 export on stdout)

It exists so that the command driver is tested end to end against a real separate process, and as
a worked example for vendors. Each invocation is a fresh process over the same durable state folder,
which is how the DTS survives restarts anyway (REL-09). ``configure`` writes the settings to
``<work-dir>/dts-config.json``; passwords are never written (SEC-01, SEC-02): every action reads
them from ``ECDI_PASSWORD`` and ``ECDI_P12_PASSWORD``. The DTS's behaviour is exactly the in-process
one; this module only translates arguments in and the user's report out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from ..codec.safexml import hardened_parser
from ..profile import load_profile
from .config import DtsConfig, LocalUser, reference_statement
from .mutants import build_dts

CONFIG_FILE = "dts-config.json"
_SETTINGS = ("endpoint", "tls_ca", "sign_anchor", "ca_trust_list", "p12", "user_id", "tax_code",
             "declarant_name", "office", "office_name", "profile", "time_scale", "mutant", "environment")
_FUNCTIONS = {"lodge": "8", "amend": "5", "cancel": "1"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work_dir = Path(args.work_dir)
    if args.action == "configure":
        work_dir.mkdir(parents=True, exist_ok=True)
        settings = {k: getattr(args, k) for k in _SETTINGS}
        (work_dir / CONFIG_FILE).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        if not all(v in os.environ for v in ("ECDI_PASSWORD", "ECDI_P12_PASSWORD")):
            return 0                                         # settings stored; nothing to show without a DTS
        report = _dts(work_dir).configure()                  # CAP-07: the user sees the active environment
        print(json.dumps({"action": args.action, **asdict(report), "raised": None}, ensure_ascii=False))
        return 0
    dts = _dts(work_dir, args)
    if args.action == "journal":
        sys.stdout.write(dts.journal_export(args.submission))
        return 0
    if args.action == "query":
        report = dts.query(args.submission)
    elif args.action == "pay-create":                        # §10: 701/8
        from lxml import etree

        report = dts.pay_create(etree.fromstring(Path(args.document).read_bytes(), hardened_parser()))
    elif args.action == "pay-approve":                       # 702/8
        report = dts.approve(args.submission, args.otp or "")
    elif args.action == "request-otp":                       # 702/16
        report = dts.request_otp(args.submission)
    elif args.action == "resume":                            # REL-09: after a restart
        reports = dts.resume()
        report = reports[0] if reports else None
        for other in reports[1:]:
            report.notifications += other.notifications
        if report is None:
            print(json.dumps({"action": "resume", "state": "accepted", "raised": None}))
            return 0
    else:
        content = Path(args.document).read_bytes()
        from lxml import etree

        report = dts.lodge(etree.fromstring(content, hardened_parser()), type=args.type,
                           function=args.function or _FUNCTIONS[args.action], business_ref=args.business_ref)
    print(json.dumps({"action": args.action, **asdict(report), "raised": None}, ensure_ascii=False))
    return 0


def _dts(work_dir: Path, args=None):
    try:
        s = json.loads((work_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except OSError:
        sys.exit(f"reference DTS: not configured: run `configure --work-dir {work_dir}` first")
    missing = [v for v in ("ECDI_PASSWORD", "ECDI_P12_PASSWORD") if v not in os.environ]
    if missing:
        sys.exit(f"reference DTS: the environment lacks {', '.join(missing)} (passwords are never stored)")
    config = DtsConfig(
        endpoint=s["endpoint"], tls_ca_pem=s["tls_ca"], sign_anchor_pem=s["sign_anchor"],
        ca_trust_list_pem=s["ca_trust_list"], p12=s["p12"], p12_password=os.environ["ECDI_P12_PASSWORD"],
        user_id=s["user_id"], password=os.environ["ECDI_PASSWORD"], profile=load_profile(s["profile"]),
        tax_code=s["tax_code"], declarant_name=s["declarant_name"], office=s["office"],
        office_name=s["office_name"], statement=reference_statement(), time_scale=float(s["time_scale"]),
        state_dir=work_dir, environment=s.get("environment") or "test",
    )
    user_id = getattr(args, "user_id", None) or s["user_id"]     # SEC-08: the acting user's own account;
    config.accounts = (LocalUser(getattr(args, "user", None) or user_id, user_id, os.environ["ECDI_PASSWORD"]),)
    config.user_id = user_id                                     # its password is ECDI_PASSWORD
    return build_dts(config, s.get("mutant"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.reference_dts",
                                description="the ECDI reference DTS as a command-line program")
    p.add_argument("action", choices=["configure", "lodge", "amend", "cancel", "query", "resume", "journal",
                                      "pay-create", "pay-approve", "request-otp"])
    p.add_argument("--work-dir", required=True, help="the DTS's durable state folder")
    for setting in _SETTINGS:
        p.add_argument(f"--{setting.replace('_', '-')}", dest=setting)
    p.add_argument("--document", help="the Content child to lodge (XML file)")
    p.add_argument("--type", help="message type, e.g. 929")
    p.add_argument("--function", help="request function (default: 8 lodge, 5 amend, 1 cancel)")
    p.add_argument("--business-ref")
    p.add_argument("--user", help="the local user acting (SEC-08); password in ECDI_PASSWORD")
    p.add_argument("--otp", help="pay-approve: the OTP the user read in the e-mail")
    p.add_argument("--submission", help="messageId of the submission to query (journal: export only it)")
    return p


if __name__ == "__main__":
    sys.exit(main())
