"""The CGW case families beyond transport (checks, idempotency, polling, replies, request-signatures, flows,
payment) against the project's mock gateway started as a separate process (``ecdi gateway --statement``),
certified through ``ecdi run --gateway`` on both profiles: each case PASSes, or is NOT-APPLICABLE only where
its requirement is another profile's (SIG-06 in 1.0, SIG-07 in 1.1).
"""

from __future__ import annotations

import pytest

from conformance.catalogue import all_cases
from test_gateway_run import run_gateway, start_gateway, stop_gateway

FAMILIES = ("cgw-checks", "cgw-idempotency", "cgw-polling", "cgw-replies", "cgw-request-signatures", "cgw-flows",
            "cgw-payment")
OTHER_PROFILE = {"ecdi-1.0": {"cgw-request-signatures.sha1-refused"},
                 "ecdi-1.1": {"cgw-request-signatures.sha1-accepted"}}


def family_cases() -> list[str]:
    return [s.id for s in all_cases() if s.family_name in FAMILIES]


@pytest.fixture(scope="module")
def mock_gateway(pki_dir, tmp_path_factory):
    proc, statement = start_gateway(pki_dir, tmp_path_factory.mktemp("mock-gateway-families"))
    yield statement
    stop_gateway(proc)


def test_every_family_has_cases_and_every_case_a_family_file():
    ids = family_cases()
    assert {i.split(".")[0] for i in ids} == set(FAMILIES)
    assert len(ids) >= 30


@pytest.mark.long
@pytest.mark.parametrize("profile", ["ecdi-1.0", "ecdi-1.1"])
def test_the_mock_gateway_passes_every_case_of_the_families(mock_gateway, tmp_path, profile):
    cases = family_cases()
    proc, results = run_gateway(mock_gateway, tmp_path / "out", "--profile", profile,
                                *(a for c in cases for a in ("--case", c)))
    verdicts = {c["id"]: (c["verdict"], c.get("reason")) for c in results.get("cases", [])}
    assert set(verdicts) == set(cases), proc.stdout[-3000:] + proc.stderr[-3000:]
    wrong = {cid: v for cid, v in verdicts.items()
             if v[0] != ("NOT-APPLICABLE" if cid in OTHER_PROFILE[profile] else "PASS")}
    assert not wrong, wrong
