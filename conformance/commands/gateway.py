"""``ecdi gateway``: run the mock customs gateway on its own, for manual runs of a product (GUI DTS).

Prints what the tester configures in the product — the WSDL/endpoint URL, the test CA files to
import, the account with a freshly generated password — and the live page's URL, then serves until
Ctrl-C. Exit 2 with one clear line for a bad option (unknown profile, port in use).

Its data folder holds the test PKI's private keys and the gateway's state, so by default it is outside
any working tree: ``$XDG_DATA_HOME/ecdi-gateway`` (``~/.local/share/ecdi-gateway``), printed at start.
Of its files only ``evidence.sqlite3`` is meant to be shared (passwords and OTPs in it are fingerprints).
"""

from __future__ import annotations

import secrets
import signal
import sys
import os
import threading
from pathlib import Path

DEFAULT_USER = "nguoikhai"
OTHER_USER = "doanhnghiepkhac"  # a user of another tax code only (ENV-09, U0002), with --statement
CHECKER_USER = "nguoiduyet"   # a second user of the same tax code (maker ≠ checker, PAY-07), with --statement


def register(sub) -> None:
    gw = sub.add_parser("gateway", help="run the mock customs gateway standalone (manual testing, live page)")
    gw.add_argument("--port", type=int, default=8443, help="TCP port (0: any free port; default 8443)")
    gw.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    gw.add_argument("--profile", action="append", help="profile id, repeatable (default ecdi-1.0)")
    gw.add_argument("--pki-dir", help="test PKI folder (generated if empty; default <dir>/pki)")
    gw.add_argument("--dir", help="folder for evidence, state and the test PKI (private keys: keep it out of "
                                  "shared folders; default $XDG_DATA_HOME/ecdi-gateway or ~/.local/share/ecdi-gateway)")
    gw.add_argument("--time-scale", type=float, default=1.0, help="timer scale 0 < s <= 1 (§2.1)")
    gw.add_argument("--user", default=DEFAULT_USER, help=f"account UserId (default {DEFAULT_USER})")
    gw.add_argument("--password", help="account password (default: generated and printed)")
    gw.add_argument("--statement", nargs="?", const="", metavar="PATH",
                    help="write a gateway statement describing this gateway (endpoint, anchors, accounts and their "
                         "declarant keys, its control API as test clock and OTP mailbox) for `ecdi run --gateway`; "
                         "it holds secrets: written 0600, by default <dir>/gateway.toml")
    gw.add_argument("--defect", metavar="NAME",
                    help="serve a gateway with this defect (`ecdi mutants --party CGW` lists them; for "
                         "certifying the harness's CGW cases, never a real deployment)")
    gw.add_argument("--control-token-file", help="also write the control token to this file (owner-only), for "
                                                 "`ecdi run --shared-gateway URL --control-token-file FILE`")
    gw.add_argument("--database", metavar="URL",
                    help="a postgresql:// URL: evidence, submissions and sessions in that database, shared by every "
                         "gateway process given it (several processes behind one address: docs/deployment.md; "
                         "give them the same --pki-dir, --password and $ECDI_CONTROL_TOKEN); default: SQLite files "
                         "in --dir")
    gw.add_argument("--public-url", metavar="URL",
                    help="the https://host:port clients reach this gateway at, when it is behind a load balancer "
                         "(announced as its endpoint and in its WSDL); default: its own address")
    gw.set_defaults(func=_gateway)


def _gateway(args) -> int:
    from mock_server import Account, GatewayConfig, run_in_thread
    from mock_server.database import StorageUnavailable, describe, is_url

    from ..shared_gateway import TOKEN_ENV

    from ..pki import TestPKI
    from ..profile import ProfileError, load_profile

    if not 0 < args.time_scale <= 1:
        print(f"ecdi: --time-scale must be 0 < s <= 1, got {args.time_scale}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"ecdi: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    profiles = args.profile or ["ecdi-1.0"]
    from mock_server.defects import behaviour_of

    try:
        behaviour = behaviour_of(args.defect)
    except KeyError as exc:
        print(f"ecdi: --defect: {exc.args[0]}", file=sys.stderr)
        return 2
    try:
        for pid in profiles:
            load_profile(pid)
    except ProfileError as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    folder = Path(args.dir).resolve() if args.dir else default_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        pki = TestPKI.ensure(Path(args.pki_dir).resolve() if args.pki_dir else folder / "pki")
    except OSError as exc:
        print(f"ecdi: cannot prepare {exc.filename or folder}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    password = args.password or secrets.token_urlsafe(12)
    if args.database and not is_url(args.database):
        print(f"ecdi: --database must be a postgresql:// URL, got {describe(args.database)!r}", file=sys.stderr)
        return 2
    accounts = [Account(args.user, password, [pki.tax_code])]
    registered = {pki.tax_code: [pki.declarant.cert]}
    identities, matrix = {}, {}
    if args.statement is not None:
        from .. import pki_matrix

        accounts.append(Account(CHECKER_USER, secrets.token_urlsafe(12), [pki.tax_code]))
        # ENV-09: a user of another enterprise only (U0002), with a pair of its own
        accounts.append(Account(OTHER_USER, secrets.token_urlsafe(12), [pki_matrix.OTHER_TAX_CODE]))
        identities[OTHER_USER] = pki.issue_declarant("statement-other-user", pki_matrix.OTHER_TAX_CODE)
        registered[pki_matrix.OTHER_TAX_CODE] = [identities[OTHER_USER].cert]
        # the request-signature matrix, registered as customs would (all but "unregistered", SIG-11)
        matrix = {e.name: pki_matrix.identity(pki, e) for e in pki_matrix.MATRIX if e.p12_password is None}
        registered[pki.tax_code] += [matrix[e.name].cert for e in pki_matrix.MATRIX if e.name in matrix and e.registered]
    try:
        running = run_in_thread(GatewayConfig(
            profiles=profiles, pki_folder=pki.folder, host=args.host, port=args.port,
            evidence_db=folder / "evidence.sqlite3", database=args.database, public_url=args.public_url,
            time_scale=args.time_scale, accounts=accounts, registered_certs=registered, behaviour=behaviour,
            # processes sharing a database answer to one token (the one `ecdi run --shared-gateway` reads)
            control_token=os.environ.get(TOKEN_ENV) or None))
    except (RuntimeError, OSError, StorageUnavailable) as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    except ImportError:
        print("ecdi: --database needs psycopg (pip install 'psycopg[binary]')", file=sys.stderr)
        return 2
    from ..crl_server import CrlServer

    # SIG-12: a product pointed at the standalone gateway reaches the CRL where its certificate says
    crl_problem = CrlServer(pki.folder, pki.crl_port).start()
    base = running.endpoint_url.rsplit("/ecdi/", 1)[0]
    first = load_profile(profiles[0])
    central, offices = first.deployment["central_office"], sorted(first.offices)[:5]
    lines = [
        f"ECDI mock customs gateway — profiles {', '.join(profiles)}, time scale {args.time_scale}"
        + (f"  — WITH DEFECT {args.defect} (a deliberately wrong gateway)" if args.defect else ""),
        f"  endpoint (cgw_endpoint): {running.endpoint_url}",
        f"  WSDL:                    {running.wsdl_url}",
        f"  live page:               {base}/live?token={running.control_token}",
        f"  TLS trust anchor to import (test CA): {pki.tls_ca_pem}",
        f"  cgw_sign_anchor (reply signatures):   {pki.sign_anchor_pem}",
        f"  ca_trust_list (declarant CAs):        {pki.trust_list_pem}",
        f"  test declarant certificate (PKCS#12): {pki.declarant.p12}  password: {pki.declarant.p12_password}",
        f"  account: UserId {args.user}  password: {password}  tax code: {pki.tax_code}",
        f"  CRL distribution point:               {pki.crl_url}"
        + (f"  (NOT served: {crl_problem})" if crl_problem else ""),
        f"  central_office: {central}  customs offices: {', '.join(offices)}",
        f"  data folder (private: test PKI keys, state): {folder}",
        f"  evidence log (shareable): {describe(running.evidence_db)}   (check: ecdi evidence verify "
        f"{describe(running.evidence_db)}" + (f"; a copy: ecdi evidence export URL FILE)" if args.database else ")"),
        f"  control API: {running.control_url}  token: {running.control_token}",
    ]
    lines.append(f"  vendor runs on this gateway: ecdi run --shared-gateway {base} --pki-dir {pki.folder} "
                 f"--time-scale {args.time_scale:g} (token: --control-token-file or $ECDI_CONTROL_TOKEN)")
    if args.control_token_file:
        try:
            _write_token(Path(args.control_token_file), running.control_token)
        except OSError as exc:
            running.stop()
            print(f"ecdi: --control-token-file {args.control_token_file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if args.statement is not None:
        from ..gateway_statement import write_mock_statement

        target = Path(args.statement).resolve() if args.statement else folder / "gateway.toml"
        try:
            write_mock_statement(target, running, pki, [load_profile(p) for p in profiles], accounts,
                                 args.time_scale, identities, matrix)
        except OSError as exc:
            running.stop()
            print(f"ecdi: --statement {target}: cannot be written: {exc.strerror or exc}", file=sys.stderr)
            return 2
        lines.append(f"  gateway statement (private, for ecdi run --gateway): {target}")
    lines.append("ready — Ctrl-C stops the gateway")
    _stop_on_ctrl_c_and_term()
    try:                        # "ready" is printed inside: a Ctrl-C right after it still stops cleanly
        print("\n".join(lines), flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    print("gateway stopped", flush=True)
    return 0


def _write_token(path: Path, token: str) -> None:
    """The token, readable by its owner only, written whole (a reader never sees half of it)."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.replace(partial, path)


def default_dir() -> Path:
    """The standalone gateway's data folder when ``--dir`` is not given: the user's data directory."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).resolve() / "ecdi-gateway"


def _stop_on_ctrl_c_and_term() -> None:
    """Ctrl-C (SIGINT) and SIGTERM both stop the gateway cleanly (evidence closed, connections released),
    even when it was started by a parent that ignores SIGINT — a test runner's worker or a service
    manager — whose "ignore" a child process would otherwise inherit."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
