"""Signature family (SIG): requests are signed exactly as Table 8-1, with SHA-256 only."""

from conformance import checks, scenarios
from conformance.case import case
from conformance.verdict import EvidenceKind, Verdict



def reply_refused_as_security_error(ecdi, outcome, exchange) -> None:
    """SIG-15, RPL-06, SEC-09: a reply the DTS must not believe changed nothing the user sees, was told
    as a security error, and is in the journal."""
    ecdi.check(checks.reply_not_acted_on(outcome, exchange), "RPL-06", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.shown_as(outcome, "security-error"), "SEC-09", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.reply_journalled(ecdi.journal(), exchange.message_id), "SIG-15", evidence=EvidenceKind.FILE)


@case(
    "signature.sha256-only",
    requirements=["SIG-01", "SIG-04"],
    capability="import",
    purpose="Every request carries one enveloped XMLDSig per Table 8-1, made with SHA-256 digest and signature "
            "(even in profile 1.0, where the gateway tolerates SHA-1), by a certificate for From/identity.",
)
def test_sha256_only(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.something_sent(sent, "the DTS's requests"), "SIG-01", stop=True)
    for exchange in sent:
        ecdi.check(checks.signature_shape(exchange, ecdi.profile), "SIG-01")
        ecdi.check(checks.signature_conforms(exchange, ecdi.profile), "SIG-04")


# Test certificates (see conformance/pki_matrix.py) the DTS must refuse before signing, and the cause
# SIG-12 says the user must be told for each.
UNFIT_CERTIFICATES = {
    "expired": "expired",
    "not-yet-valid": "not yet valid",
    "revoked": "revoked",
    "other-tax-code": "wrong tax code",
    "rsa-1024": "unsuitable key",
    "wrong-key-usage": "unsuitable key",
}


# Certificates only a CRL shows to be unfit: SIG-12 asks for that check "when that CRL is reachable".
NEEDS_CRL = ("revoked",)


def crl_reachable(ecdi, certificate: str) -> bool:
    """Whether the DTS can be judged with ``certificate``: one that only a CRL shows unfit is judged only
    when the SUT file says how the product reaches the CRL (else NOT-APPLICABLE) and the harness serves it
    (else INCONCLUSIVE: a correct product cannot check a CRL the harness failed to serve)."""
    if certificate not in NEEDS_CRL:
        return True
    if ecdi.setting("crl_access") == "none":
        ecdi.check(checks.Check(False, f"the {certificate} certificate is not tried: the SUT file declares no way "
                                       "for the product to reach a CRL (crl = \"none\")"),
                   "SIG-12", severity=Verdict.NOT_APPLICABLE)
        return False
    problem = ecdi.setting("crl_problem")
    if problem:
        ecdi.check(checks.Check(False, f"the {certificate} certificate is not tried: {problem}"), "SIG-12",
                   severity=Verdict.INCONCLUSIVE)
    return not problem


def lodge_with(ecdi, certificate: str):
    """Install ``certificate`` and lodge; the outcome and the requests that arrived while it was the one
    installed, so that each certificate is judged on its own exchanges only."""
    earlier = len(ecdi.requests())
    ecdi.install_certificate(certificate)
    outcome = ecdi.lodge("declaration-import", type="929")
    return outcome, ecdi.requests()[earlier:]


@case(
    "signature.refuses-unfit-certificate",
    requirements=["SIG-12", "SEC-09"],
    capability="import",
    purpose="With an expired, not-yet-valid, revoked, other-tax-code or unsuitable-key certificate installed, "
            "the DTS sends nothing and tells the user, as a local error, the specific cause.",
)
def test_refuses_unfit_certificate(ecdi):
    for certificate, cause in UNFIT_CERTIFICATES.items():
        if not crl_reachable(ecdi, certificate):
            continue
        outcome, sent = lodge_with(ecdi, certificate)
        ecdi.check(checks.nothing_sent(sent, f"with the {certificate} certificate"), "SIG-12")
        ecdi.check(checks.local_error_says(outcome, checks.CERTIFICATE_CAUSE_WORDS[cause], f"the cause ({cause})"),
                   "SEC-09", evidence=EvidenceKind.DRIVER)


# The certificates SIG-12 calls unusable in themselves; the seeds' "fallback to unsigned declarations"
# would send the message unsigned instead of refusing.
UNUSABLE_CERTIFICATES = ("expired", "not-yet-valid", "revoked")


@case(
    "signature.unusable-certificate-never-unsigned",
    requirements=["SIG-12", "SIG-13", "SEC-03"],
    capability="import",
    purpose="With an expired, not-yet-valid or revoked certificate installed, the DTS sends nothing: in "
            "particular not the message unsigned, which no mode of a DTS may do.",
)
def test_unusable_certificate_never_unsigned(ecdi):
    for certificate in UNUSABLE_CERTIFICATES:
        if not crl_reachable(ecdi, certificate):
            continue
        _, sent = lodge_with(ecdi, certificate)
        unsigned = checks.none_unsigned(sent, f"with the {certificate} certificate")
        ecdi.check(unsigned, "SEC-03")
        ecdi.check(unsigned, "SIG-13")
        ecdi.check(checks.nothing_sent(sent, f"with the {certificate} certificate"), "SIG-12")


# The two ways a reply can fail SIG-15 that the gateway can stage (docs/scenarios.md): one digit of
# e:Result altered after signing, and a valid signature by an impostor's self-signed look-alike key.
REPLY_FORGERIES = ("forge_signature", "untrusted_signature")


@case(
    "signature.verifies-replies",
    requirements=["SIG-15", "RPL-06", "SEC-09"],
    capability="import",
    purpose="A receipt whose signature fails (one digit altered after signing, or signed by an impostor key "
            "outside cgw_sign_anchor) is not acted on: no reception number, no customs result; the user is "
            "told of a security error and the reply is journalled.",
)
def test_verifies_replies(ecdi):
    for n, action in enumerate(REPLY_FORGERIES, 1):
        ecdi.given(scenarios.every_reply("929", {"action": action}, f"forged-replies-{action}"))
        outcome = ecdi.lodge("declaration-import", type="929")
        sent = ecdi.requests(type="929", function="8", first_attempts=True)
        # Without a declaration whose reply the gateway altered there is nothing to judge: INCONCLUSIVE.
        ecdi.check(checks.Check(len(sent) == n, f"{len(sent)} declaration(s) received so far"), "SIG-15",
                   severity=Verdict.INCONCLUSIVE, stop=True)
        exchange = ecdi.answered_attempt(sent[-1], "SIG-15")
        ecdi.check(checks.altered_in_transit(exchange, action), "SIG-15", severity=Verdict.INCONCLUSIVE, stop=True)
        reply_refused_as_security_error(ecdi, outcome, exchange)


@case(
    "signature.never-unsigned",
    requirements=["SIG-13", "SEC-03", "SEC-09"],
    capability="import",
    purpose="When signing fails (the PKCS#12 cannot be opened: wrong password) the DTS sends nothing — in "
            "particular nothing unsigned — and tells the user, as a local error, that signing failed and why.",
)
def test_never_unsigned(ecdi):
    ecdi.install_certificate("wrong-p12-password")
    outcome = ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.none_unsigned(sent, "with a key that cannot be opened"), "SEC-03")
    ecdi.check(checks.nothing_sent(sent, "with a key that cannot be opened"), "SIG-13")
    ecdi.check(checks.local_error_says(outcome, checks.SIGNING_FAILURE_WORDS, "that signing failed and why"),
               "SIG-13", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.shown_as(outcome, "local-error"), "SEC-09", evidence=EvidenceKind.DRIVER)


@case(
    "signature.sends-signed-octets",
    requirements=["SIG-02"],
    capability="import",
    purpose="The DTS transmits exactly the octets it signed: every message text verifies as the gateway "
            "received it (no re-indentation, re-encoding, namespace or prefix change after signing).",
)
def test_sends_signed_octets(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.something_sent(sent, "the DTS's requests"), "SIG-02", stop=True)
    for exchange in sent:
        ecdi.check(checks.verifies_as_received(exchange, ecdi.profile), "SIG-02")


@case(
    "signature.ecdsa-value",
    requirements=["SIG-03"],
    capability="ecdsa",
    purpose="With the ECDSA P-256 test certificate installed, the DTS signs ECDSA-P256-SHA256 and its "
            "SignatureValue is the 64 octets r‖s (not DER); the gateway verifies and accepts it.",
)
def test_ecdsa_value(ecdi):
    ecdi.install_certificate("ecdsa-p256")
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests(type="929", function="8")
    ecdi.check(checks.something_sent(sent, "a declaration signed with the ECDSA certificate"),
               "SIG-03", stop=True)
    for exchange in ecdi.requests():
        ecdi.check(checks.ecdsa_value(exchange, ecdi.profile), "SIG-03")
    ecdi.needs_recorded(sent, "the ECDSA-signed declaration")    # refused at the signature step: SIG-03's FAIL


# SIG-15 with the gateway's own certificate changing: a routine renewal under the same cgw_sign_anchor
# must be accepted; a gateway certificate expired at the reply's createMessageIssue must be refused.
# The first declaration is answered normally, so a DTS that remembers ("pins") the first gateway
# certificate it saw instead of trusting the anchor is caught on the renewed one.
GATEWAY_CERTIFICATES = ("renewed", "expired")


@case(
    "signature.gateway-certificate-renewal",
    requirements=["SIG-15", "RPL-06", "SEC-09"],
    capability="import",
    purpose="A receipt signed with a renewed gateway certificate under cgw_sign_anchor is acted on; one "
            "signed with a gateway certificate expired at its createMessageIssue is not: no reception number, "
            "a security error naming the cause, the reply journalled.",
)
def test_gateway_certificate_renewal(ecdi):
    ecdi.given(scenarios.gateway_certificate("usual"))
    first = ecdi.lodge("declaration-import", type="929")
    genuine = ecdi.requests(type="929", function="8", first_attempts=True)
    ecdi.needs_recorded(genuine, "the first declaration", outcome=first)
    ecdi.check(checks.Check(len(genuine) == 1, f"{len(genuine)} declaration(s) received"), "SIG-15",
               severity=Verdict.INCONCLUSIVE, stop=True)
    usual = ecdi.answered_attempt(genuine[0], "SIG-15")
    ecdi.check(checks.reply_acted_on(first, usual, "the gateway's usual certificate"), "SIG-15",
               evidence=EvidenceKind.DRIVER)
    for n, which in enumerate(GATEWAY_CERTIFICATES, 2):
        ecdi.given(scenarios.gateway_certificate(which))
        outcome = ecdi.lodge("declaration-import", type="929")
        sent = ecdi.requests(type="929", function="8", first_attempts=True)
        ecdi.check(checks.Check(len(sent) == n, f"{len(sent)} declaration(s) received so far"), "SIG-15",
                   severity=Verdict.INCONCLUSIVE, stop=True)
        exchange = ecdi.answered_attempt(sent[-1], "SIG-15")
        ecdi.check(checks.altered_in_transit(exchange, "gateway_certificate"), "SIG-15",
                   severity=Verdict.INCONCLUSIVE, stop=True)
        if which == "renewed":
            ecdi.check(checks.reply_acted_on(outcome, exchange, "a renewed gateway certificate under the anchor"),
                       "SIG-15", evidence=EvidenceKind.DRIVER)
            continue
        reply_refused_as_security_error(ecdi, outcome, exchange)
        ecdi.check(checks.told_user(outcome, checks.CERTIFICATE_CAUSE_WORDS["expired"],
                                    "that the gateway certificate expired", kinds={"security-error"}),
                   "SIG-15", evidence=EvidenceKind.DRIVER)


@case(
    "signature.branch-uses-parent-certificate",
    requirements=["ENV-06", "SIG-01", "SIG-12"],
    capability="import",
    purpose="Acting for a branch (tax code NNNNNNNNNN-NNN) with its parent's certificate installed, the DTS "
            "signs and sends with From/identity the branch's code, and the gateway accepts it (SIG-09).",
)
def test_branch_uses_parent_certificate(ecdi):
    branch = ecdi.act_for_branch()
    outcome = ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests(type="929", function="8")
    ecdi.check(checks.something_sent(sent, f"a declaration for branch {branch} with the parent's certificate",
                                     outcome),
               "SIG-12", stop=True)
    ecdi.needs_readable(sent)
    got = checks.header_value(sent[0], "From/identity", ecdi.profile)
    ecdi.check(checks.Check(got == branch, f"From/identity is {got!r} (the branch acting: {branch})"), "ENV-06")
    ecdi.check(checks.signature_conforms(sent[0], ecdi.profile), "SIG-01")
    ecdi.needs_recorded(sent, "the branch's declaration")    # refused for the certificate: SIG-01's FAIL
