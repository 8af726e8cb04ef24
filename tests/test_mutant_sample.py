"""The CI sample of the long self-test (``ecdi mutants --score --whole-catalogue``, issue 12 item 5).

One mutant of each family (``reference_dts/mutants.py`` and each ``mutants_<family>.py``), picked for the
oddest bytes or states it puts in front of *other* cases, runs against its own case, its family's cases and
a few cases that parse what the product sends or shows. Judged exactly as the long self-test judges: its own
case FAILs on a requirement it breaks, and no case ends in ERROR except through the driver — whatever a
product does, a case judges it or says why it cannot. Each run stays under ~20 s at the self-test's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.commands.mutants import crashes, judge
from conformance.reference_dts.mutants import MUTANTS

# Cases of other families that read what every product sends (the request text, its signature) or shows
# (notifications, the journal): the first to meet a mutant's odd bytes outside its own family.
READERS = ("schema.requests-validate", "signature.sends-signed-octets", "security.journal-export",
           "reply.rejection-shown-verbatim")


@dataclass(frozen=True)
class Sample:
    mutant: str
    cases: tuple[str, ...]          # besides the mutant's own case, which always runs
    every_case_fails_on: str | None = None

    def case_ids(self) -> list[str]:
        return list(dict.fromkeys([MUTANTS[self.mutant].caught_by, *self.cases]))


SAMPLES = [
    # mutants.py: a KeyInfo without X509Data, so every signature check meets a request with no certificate.
    Sample("omits-certificate", ("signature.refuses-unfit-certificate", "signature.unusable-certificate-never-unsigned",
                                 "signature.verifies-replies", "signature.never-unsigned", "signature.ecdsa-value",
                                 "signature.gateway-certificate-renewal", "signature.branch-uses-parent-certificate",
                                 "transport.valid-declaration-accepted", *READERS)),
    # mutants.py, the retransmission states: a fresh messageId on every retry, met where a retry follows a
    # malformed reply (its own case alone takes ~12 s: the other cases that retry are the long self-test's).
    Sample("new-message-id-on-retry", ("reply.malformed-reply-refused",), every_case_fails_on="REL-05"),
    # envelope: an XML comment in the Header, a node without a tag name wherever headers are read.
    Sample("comment-in-header", ("envelope.type-function-rows", "envelope.header-identities",
                                 "envelope.business-references", "envelope.installation-id",
                                 "envelope.send-application", "envelope.version-claimed", "envelope.message-ids-fresh",
                                 *READERS)),
    # flows: an unknown key in the capability statement every case's set-up reads.
    Sample("statement-unknown-key", ("capability.configured-environment-shown", "capability.unclaimed-never-sent",
                                     "flows.amend-recorded-declaration", "flows.cancel-recorded-declaration",
                                     "flows.unknown-declaration-refused", "flows.cancel-unknown-declaration-refused",
                                     "reply.duplicate-processed-once", "reply.warning-not-failure",
                                     "reliability.resume-after-crash", "security.journal-export")),
    # payment: an order description that is not the canonical rendering, so the order itself is refused.
    Sample("description-as-entered", ("payment.maker-and-checker", "payment.expired-otp-renewed",
                                      "payment.maker-cannot-approve", "payment.otp-mail-never-arrives",
                                      "schema.requests-validate", "security.journal-export")),
    # security: the signed text pretty-printed after signing: bytes whose signature no longer verifies.
    Sample("reindents-after-signing", ("signature.sha256-only", "signature.verifies-replies",
                                       "signature.gateway-certificate-renewal", "security.misrouted-replies",
                                       "security.hardened-reply-parsing", "security.no-clear-text-secrets",
                                       *READERS)),
    # text: a DOCTYPE in every message text, which hardened parsers refuse outright.
    Sample("doctype-in-message", ("text.nfc", "text.lengths-in-code-points", "text.no-control-or-edge-space",
                                  "text.locale-independent", "document.goods-limit", "document.lines-and-totals",
                                  "transport.message-text-escaped", *READERS)),
    # transport: the message as child elements of MessageXML, not escaped text: no message text to read.
    Sample("message-xml-as-elements", ("transport.valid-declaration-accepted", "transport.refuses-untrusted-tls",
                                       "transport.tls-versions-and-suites", "transport.https-only",
                                       "transport.credentials-only-in-body", "transport.wsdl-not-needed",
                                       "transport.final-outcomes-not-retransmitted", *READERS)),
]


def test_every_family_is_sampled():
    """A new family of mutants needs its sample here (the module that defines each mutant's class)."""
    families = {m.cls.__module__ for m in MUTANTS.values() if m.cls.__module__.startswith("conformance.reference_dts")}
    sampled = {MUTANTS[s.mutant].cls.__module__ for s in SAMPLES}
    assert families - sampled == set()


@pytest.mark.timeout(150)      # a run takes ~20 s; the rest is headroom for a loaded machine and the PKI fixture
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.mutant)
def test_mutant_is_caught_and_no_case_crashes(sample, run_ecdi, tmp_path):
    mutant = MUTANTS[sample.mutant]
    profile = ("--profile", mutant.profile) if getattr(mutant, "profile", None) else ()   # as `ecdi mutants --score`
    run = run_ecdi(tmp_path / "out", "--mutant", mutant.name, *profile,
                   *(a for c in sample.case_ids() for a in ("--case", c)))
    results = run.results
    assert sorted(run.verdicts()) == sorted(sample.case_ids()), run.explain()
    caught, why = judge(mutant, results)
    assert caught, f"{why}\n{run.explain()}"
    assert crashes(results) == [], run.explain()
    if sample.every_case_fails_on:
        for c in results["cases"]:
            failed = {f["requirement"] for f in c["findings"] if f["verdict"] == "FAIL"}
            assert c["verdict"] == "FAIL" and sample.every_case_fails_on in failed, (c["id"], c["verdict"], c["reason"])
