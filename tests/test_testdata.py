"""Seeded test data: valid, varied per seed, identical for the same seed."""

from conformance.codec.safexml import parse_message_text
from conformance.profile import load_profile
from conformance.testdata import SAMPLE_TAX_CODE, TestData


def test_same_seed_same_documents_other_seed_other_documents():
    assert TestData(7).document("declaration-import") == TestData(7).document("declaration-import")
    assert TestData(7).document("declaration-import") != TestData(8).document("declaration-import")


def test_varied_declarations_stay_valid_with_exact_totals():
    profile = load_profile("ecdi-1.0")
    for seed in range(25):
        for name in ("declaration-import", "declaration-export"):
            root = parse_message_text(TestData(seed).document(name))
            assert profile.validate_content(root) == [], (seed, name)
            ns = {"d": "urn:ecdi:declaration:1"}
            from decimal import Decimal
            values = sum(Decimal(v) for v in root.xpath("d:GoodsItem/d:value/text()", namespaces=ns))
            assert Decimal(root.xpath("string(d:Invoice/d:totalValue)", namespaces=ns)) == values


def test_the_declarants_tax_code_is_drawn_from_the_seed_and_carried_by_the_documents():
    codes = {TestData(seed).tax_code for seed in range(50)}
    assert len(codes) == 50 and all(len(c) == 10 and c.isdigit() for c in codes)
    assert TestData(7).tax_code == TestData(7).tax_code
    data = TestData(7)
    declaration = data.document("declaration-import")
    assert f"<taxCode>{data.tax_code}</taxCode>".encode() in declaration
    assert SAMPLE_TAX_CODE.encode() not in declaration
    assert f"MST:{data.tax_code}".encode() in data.document("payment-order")
