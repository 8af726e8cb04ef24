"""``ecdi verify CERT.html|CERT.pdf --trust KEY.pub.pem [--evidence DB]``: is this certificate what it says?

Prints one line: ``VALID: …`` (exit 0) or ``INVALID: <reason>`` (exit 1); a file that cannot be read
at all is a usage problem (exit 2). By default only a CERTIFIED certificate signed by the trusted
(customs) key is valid; ``--accept-self-assessment`` also accepts a genuine self-assessment.
"""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("verify", help="verify a certificate's signatures, issuer role and evidence chain")
    p.add_argument("certificate", help="certificate.html or certificate.pdf")
    p.add_argument("--trust", required=True,
                   help="PEM public key (or X.509 certificate) of the trusted issuer: the key customs publishes, or "
                        "certificate-issuer.pub.pem beside a self-assessment; never a private key")
    p.add_argument("--evidence", help="the run's evidence database (evidence.sqlite3) or evidence folder")
    p.add_argument("--accept-self-assessment", action="store_true",
                   help="accept a validly signed self-assessment too (vendors checking their own file)")
    p.set_defaults(func=_verify)


def _verify(args) -> int:
    from ..issuer import IssuerError, load_trusted_key
    from ..report.verify import Rejected, verify_certificate

    try:
        key = load_trusted_key(Path(args.trust))
        data = Path(args.certificate).read_bytes()
    except IssuerError as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ecdi: certificate {args.certificate}: cannot be read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    evidence = Path(args.evidence) if args.evidence else None
    if evidence is not None and evidence.is_dir():
        evidence = evidence / "evidence.sqlite3"
    try:
        result = verify_certificate(data, key, accept_self_assessment=args.accept_self_assessment,
                                    evidence_db=evidence, chain_check=chain_check)
    except Rejected as exc:
        print(f"INVALID: {exc}")
        return 1
    print(f"VALID: {result.summary()}" + (" (evidence chain matches)" if evidence else ""))
    return 0


def chain_check(db: Path) -> tuple[bool, int | None]:
    """The gateway's own chain verifier: the one definition of how evidence rows are hashed."""
    from mock_server.evidence import verify_chain

    return verify_chain(db)
