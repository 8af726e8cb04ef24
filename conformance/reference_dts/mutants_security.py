"""Mutants of the signature and security cases (see ``mutants.py`` for what a mutant is): one hook
override each."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from ..codec import certs
from .dts import ReferenceDTS
from .mutants import MUTANTS, Mutant, _text
from .signing import CertificateUnfit


class ReindentsAfterSigning(ReferenceDTS):
    def transmitted_text(self, signed: bytes) -> bytes:
        root = etree.fromstring(signed)
        return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)   # SIG-02


_SIGNATURE_VALUE = re.compile(rb"(<(?:ds:)?SignatureValue[^>]*>)([^<]*)(<)")


class EcdsaDerValue(ReferenceDTS):
    def signed_text(self, root, signature_method: str, digest_method: str) -> bytes:
        text = super().signed_text(root, signature_method, digest_method)
        match = _SIGNATURE_VALUE.search(text)
        raw = base64.b64decode(b"".join(match.group(2).split()))
        if len(raw) != 64:
            return text
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        return text[:match.start(2)] + base64.b64encode(der) + text[match.end(2):]   # SIG-03: DER, not r‖s


class PinsGatewayCertificate(ReferenceDTS):
    def reply_certificate_problem(self, signer, intermediates, anchors, issued):
        problem = super().reply_certificate_problem(signer, intermediates, anchors, issued)
        if problem:
            return problem
        seen = signer.fingerprint(hashes.SHA256())
        pinned = self.__dict__.setdefault("_pinned_gateway_certificate", seen)
        # SIG-15: trusts the first gateway certificate it saw, not any certificate under cgw_sign_anchor
        return None if seen == pinned else "gateway certificate is not the one pinned at first use"


class IgnoresGatewayCertificateValidity(ReferenceDTS):
    def reply_certificate_problem(self, signer, intermediates, anchors, issued):
        inside = min(issued, signer.not_valid_after_utc - timedelta(seconds=1))   # SIG-15: validity never checked
        return super().reply_certificate_problem(signer, intermediates, anchors, inside)


class UnsignedOnUnusableCertificate(ReferenceDTS):
    def certificate_refused(self, unsigned, problem: CertificateUnfit) -> bytes:
        if problem.cause in ("expired", "not yet valid", "revoked"):
            return _text(unsigned)      # SIG-12, SIG-13, SEC-03: the seeds' "fallback to unsigned declarations"
        return super().certificate_refused(unsigned, problem)


class IgnoresRevocation(ReferenceDTS):
    def check_certificate(self, now) -> None:
        try:
            super().check_certificate(now)
        except CertificateUnfit as exc:
            if exc.cause != "revoked":              # SIG-12: the reachable CRL is never consulted
                raise


class RefusesParentCertificateForBranch(ReferenceDTS):
    def check_certificate(self, now) -> None:
        super().check_certificate(now)
        tax = certs.tax_code_of(self.key.certificate)
        if tax != self.config.tax_code:                 # SIG-12/SIG-09: a branch may sign with its parent's
            raise CertificateUnfit("wrong tax code", f"the certificate is for {tax}, not {self.config.tax_code}",
                                   "use the certificate issued for this declarant's tax code")


class ParentCodeForBranch(ReferenceDTS):
    def acting_for(self) -> str:
        return self.config.tax_code.split("-")[0]       # ENV-06: the parent's code, matching its certificate


class NoCorrelationCheck(ReferenceDTS):
    def reply_correlation_problem(self, header, expect):
        return None                                     # SEC-04: believes any validly signed reply


class Checks271Placeholders(ReferenceDTS):
    def reply_correlation_problem(self, header, expect):
        for path, wanted in (("Subject/reference", expect.reference), ("To/identity", expect.to_identity),
                             ("Subject/type", expect.type), ("Reference/version", expect.version)):
            if header.get(path) != wanted:               # SEC-04: a 271's placeholders must not be checked
                return f"{path} is {header.get(path)!r} where the request had {wanted!r}"
        return None


class NoReplyDepthLimit(ReferenceDTS):
    def reply_parse_limits(self):
        max_bytes, _ = super().reply_parse_limits()
        return max_bytes, None                          # SEC-05: parses replies nested at any depth


class NoReplySizeLimit(ReferenceDTS):
    def reply_parse_limits(self):
        _, max_depth = super().reply_parse_limits()
        return None, max_depth                          # SEC-05: parses replies of any size


class JournalOmitsNotifications(ReferenceDTS):
    def journal_export(self, submission=None) -> str:
        return "".join(line + "\n" for line in super().journal_export(submission).splitlines()
                       if json.loads(line).get("event") != "notification")    # SEC-06: what the user saw is lost


class JournalPerSubmissionIsWhole(ReferenceDTS):
    def journal_export(self, submission=None) -> str:
        return super().journal_export(None)             # SEC-06: no export per submission, always everything


class JournalWrongMemberNames(ReferenceDTS):
    def journal_export(self, submission=None) -> str:
        renamed = []
        for line in super().journal_export(submission).splitlines():
            event = json.loads(line)
            event["message_id"] = event.pop("messageId")               # SEC-06: Table 12-1 names the members
            renamed.append(json.dumps(event, ensure_ascii=False) + "\n")
        return "".join(renamed)


MUTANTS.update({m.name: m for m in [
    Mutant("reindents-after-signing", "pretty-prints the message text after signing it",
           ["SIG-02"], "signature.sends-signed-octets", ReindentsAfterSigning),
    Mutant("ecdsa-der-value", "writes an ECDSA SignatureValue as a DER SEQUENCE instead of r‖s",
           ["SIG-03"], "signature.ecdsa-value", EcdsaDerValue),
    Mutant("pins-gateway-certificate", "trusts the first gateway signing certificate it saw instead of "
           "cgw_sign_anchor, so it refuses replies after the gateway's certificate is renewed",
           ["SIG-15"], "signature.gateway-certificate-renewal", PinsGatewayCertificate),
    Mutant("ignores-gateway-certificate-validity", "accepts replies signed with an expired gateway certificate",
           ["SIG-15", "RPL-06"], "signature.gateway-certificate-renewal", IgnoresGatewayCertificateValidity),
    Mutant("unsigned-on-unusable-certificate", "sends the message unsigned when the certificate is expired, not "
           "yet valid or revoked", ["SIG-12", "SIG-13", "SEC-03"], "signature.unusable-certificate-never-unsigned",
           UnsignedOnUnusableCertificate),
    Mutant("ignores-revocation", "signs with a revoked certificate although its CRL is reachable",
           ["SIG-12"], "signature.refuses-unfit-certificate", IgnoresRevocation),
    Mutant("refuses-parent-certificate-for-branch", "refuses to sign for a branch with its parent's certificate",
           ["SIG-12"], "signature.branch-uses-parent-certificate", RefusesParentCertificateForBranch),
    Mutant("parent-code-for-branch", "puts the parent's tax code in From/identity when the user acts for a branch",
           ["ENV-06"], "signature.branch-uses-parent-certificate", ParentCodeForBranch),
    Mutant("no-correlation-check", "acts on validly signed replies that answer another message, tax code, type "
           "or version", ["SEC-04"], "security.misrouted-replies", NoCorrelationCheck),
    Mutant("checks-271-placeholders", "takes a 271 holding Table 4-3 placeholders for a misrouted reply",
           ["SEC-04"], "security.misrouted-replies", Checks271Placeholders),
    Mutant("no-reply-depth-limit", "parses replies nested deeper than 64 elements",
           ["SEC-05"], "security.hardened-reply-parsing", NoReplyDepthLimit),
    Mutant("no-reply-size-limit", "parses replies larger than S_max",
           ["SEC-05"], "security.hardened-reply-parsing", NoReplySizeLimit),
    Mutant("journal-omits-notifications", "leaves the notifications shown to the user out of the journal export",
           ["SEC-06"], "security.journal-export", JournalOmitsNotifications),
    Mutant("journal-per-submission-is-whole", "exports the whole journal when asked for one submission's",
           ["SEC-06"], "security.journal-export", JournalPerSubmissionIsWhole),
    Mutant("journal-wrong-member-names", "exports journal events with message_id instead of messageId",
           ["SEC-06"], "security.journal-export", JournalWrongMemberNames),
]})


class SavesCgwPassword(ReferenceDTS):
    def persist_settings(self) -> None:
        (self.config.state_dir / "settings.ini").write_text(         # SEC-01: the password in a settings file
            f"[cgw]\nuser_id={self.config.user_id}\npassword={self.config.password}\n", encoding="utf-8")


class SavesP12Password(ReferenceDTS):
    def persist_settings(self) -> None:
        (self.config.state_dir / "key.json").write_text(json.dumps({   # SEC-02: the PKCS#12 password, "hidden"
            "p12": str(self.config.p12),
            "pin": base64.b64encode(self.config.p12_password.encode("utf-8")).decode("ascii")}), encoding="utf-8")


class ExportsPrivateKey(ReferenceDTS):
    def persist_settings(self) -> None:
        from cryptography.hazmat.primitives import serialization

        key = self.key.signer().key                                  # SEC-02: the key leaves the PKCS#12
        (self.config.state_dir / "signing-key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class PasswordInJournal(ReferenceDTS):
    def persist_settings(self) -> None:
        self.journal.record("notification", kind="info", code=None,       # SEC-01: a "debug" line with the
                            text=f"Connected as {self.config.user_id} / {self.config.password}")   # password


MUTANTS.update({m.name: m for m in [
    Mutant("password-in-journal", "writes the CGW password into a journal line when it starts",
           ["SEC-01"], "security.no-clear-text-secrets", PasswordInJournal),
    Mutant("saves-cgw-password", "writes the CGW password into a settings file in clear text",
           ["SEC-01"], "security.no-clear-text-secrets", SavesCgwPassword),
    Mutant("saves-p12-password", "stores the PKCS#12 password base64-encoded beside the key file",
           ["SEC-02"], "security.no-clear-text-secrets", SavesP12Password),
    Mutant("exports-private-key", "exports the signing key to an unencrypted PEM file",
           ["SEC-02"], "security.no-clear-text-secrets", ExportsPrivateKey),
]})


class SecurityErrorAsRejection(ReferenceDTS):
    def security_notice(self, reason: str) -> tuple[str, str, str]:
        # SEC-09: a forged reply is presented as a customs rejection
        return "rejected", "customs-error", f"Customs rejected the declaration ({reason})."


MUTANTS.update({m.name: m for m in [
    Mutant("security-error-as-rejection", "tells the user a reply refused as forged was a customs rejection",
           ["SEC-09"], "signature.verifies-replies", SecurityErrorAsRejection),
]})
