"""Document and text (issue 6): the seeded document changes, the reference DTS's preparation, the checks."""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from types import SimpleNamespace

import pytest
from lxml import etree

from conformance import checks
from conformance.codec.namespaces import DEC, q
from conformance.codec.safexml import hardened_parser
from conformance.drivers import command
from conformance.profile import load_profile
from conformance.reference_dts.documents import DocumentRefused, prepare_content
from conformance.report.replay import _ReplayData
from conformance.tape import RecordingData, Tape
from conformance.testdata import EDGE_SPACE_FIELDS, TestData

PROFILE = load_profile("ecdi-1.0")
XSD = PROFILE.directory / "xsd"
SAMPLE = "declaration-import"


def parse(octets: bytes) -> etree._Element:
    return etree.fromstring(octets, hardened_parser())


def prepare(octets: bytes) -> etree._Element:
    return prepare_content(parse(octets), n_goods_max=int(PROFILE.params["N_goods_max"]), xsd_dir=XSD)


def value(root: etree._Element, path: str) -> str | None:
    return root.findtext("/".join(q(DEC, s) for s in path.split("/")))


# --- seeded document changes ----------------------------------------------------------------------

def test_changes_are_seeded_and_unknown_ones_are_named():
    assert TestData(3).document(SAMPLE, goods=51) == TestData(3).document(SAMPLE, goods=51)
    assert TestData(3).document(SAMPLE, goods=51) != TestData(4).document(SAMPLE, goods=51)
    with pytest.raises(ValueError, match="unknown document change.*goods"):
        TestData(3).document(SAMPLE, good=51)


@pytest.mark.parametrize("seed", range(5))
def test_valid_changes_give_valid_documents(seed):
    for change in ({"goods": 50}, {"large_amounts": True}, {"description_length": 200}):
        root = prepare(TestData(seed).document(SAMPLE, **change))
        assert PROFILE.validate_content(root) == [], change


def test_goods_and_description_length():
    assert checks.goods_count(TestData(1).document(SAMPLE, goods=51)) == 51
    given = TestData(1).document(SAMPLE, description_length=200)
    text = value(parse(given), "GoodsItem/description")
    nfc = unicodedata.normalize("NFC", text)
    assert len(nfc) == 200 < len(text) and len(nfc.encode("utf-8")) > 200


@pytest.mark.parametrize("seed", range(5))
def test_wrong_numbers_defeat_float_and_cents(seed):
    root = parse(TestData(seed).document(SAMPLE, wrong_numbers=True))
    values = [Decimal(v.text) for v in root.iter(q(DEC, "value"))]
    exact = sum(values, Decimal(0))
    assert Decimal(format(sum(float(v) for v in values), ".4f")) != exact
    assert round(exact, 2) != exact and Decimal(value(root, "Invoice/totalValue")) != exact
    assert [n.text for n in root.iter(q(DEC, "lineNo"))] == ["10", "20"]


def test_the_tape_records_the_changes_and_replays_them():
    tape = Tape()
    recorded = RecordingData(TestData(9), tape).document(SAMPLE, goods=3)
    assert tape.events[0]["changes"] == {"goods": 3}
    assert _ReplayData(Tape(tape.events)).document(SAMPLE, goods=3) == recorded


# --- the reference DTS's preparation ----------------------------------------------------------------

def test_edge_spaces_are_trimmed_and_white_controls_become_spaces():
    given = TestData(2).document(SAMPLE, edge_spaces=True, line_breaks=True)
    root = prepare(given)
    for path in EDGE_SPACE_FIELDS:
        sent = value(root, path)
        assert checks.text_clean(path, value(parse(given), path), sent).ok, sent
    assert "\n" in value(root, "notes") and "\r" not in value(root, "notes")
    assert PROFILE.validate_content(root) == []


def test_control_character_and_too_long_text_are_refused_with_the_rule():
    with pytest.raises(DocumentRefused) as refused:
        prepare(TestData(2).document(SAMPLE, control_character=True))
    assert refused.value.requirement == "TXT-05" and "U+0096" in refused.value.text
    with pytest.raises(DocumentRefused) as refused:
        prepare(TestData(2).document(SAMPLE, description_length=201))
    assert refused.value.requirement == "TXT-04" and "201" in refused.value.text and "200" in refused.value.text
    with pytest.raises(DocumentRefused) as refused:
        prepare(TestData(2).document(SAMPLE, goods=51))
    assert refused.value.requirement == "DOC-02" and "Split" in refused.value.text


def test_lines_and_totals_are_the_dts_own():
    root = prepare(TestData(5).document(SAMPLE, wrong_numbers=True))
    exchange = SimpleNamespace(seq=1, message_text=etree.tostring(root))
    assert checks.line_numbers(exchange).ok and checks.total_exact(exchange).ok


# --- checks -------------------------------------------------------------------------------------

def test_no_doctype_and_nfc_checks():
    plain = SimpleNamespace(seq=1, message_text=b"<a>H\xe1\xba\xa3i</a>")
    typed = SimpleNamespace(seq=2, message_text=b"<!DOCTYPE a>\n<a>x</a>")
    decomposed = SimpleNamespace(seq=3, message_text=unicodedata.normalize("NFD", "<a>Hải</a>").encode())
    assert checks.no_doctype(plain).ok and not checks.no_doctype(typed).ok
    assert checks.character_data_nfc(plain).ok and not checks.character_data_nfc(decomposed).ok


def test_text_clean_and_line_breaks():
    assert checks.text_clean("n", " a\tb ", "a b").ok
    assert not checks.text_clean("n", " a b", " a b").ok                 # edge space kept
    assert not checks.text_clean("n", "a\tb", "a\tb").ok                 # control kept
    assert not checks.text_clean("n", "a b", "a").ok                     # the user's words lost
    assert checks.text_clean("n", "a \x96 b", "a b").ok                  # a removed control is fine
    assert checks.line_breaks_kept("notes", "a\r\nb", "a\nb").ok
    assert not checks.line_breaks_kept("notes", "a\r\nb", "a b").ok


def test_values_unchanged_compares_decimals_by_value():
    given = b'<Declaration xmlns="urn:ecdi:declaration:1"><grossMassKg>1234.5</grossMassKg></Declaration>'
    same = SimpleNamespace(seq=1, message_text=given.replace(b"1234.5", b"1234.500"))
    local = SimpleNamespace(seq=2, message_text=given.replace(b"1234.5", b"1.234,5"))
    assert checks.values_unchanged(same, given, ["grossMassKg"]).ok
    assert not checks.values_unchanged(local, given, ["grossMassKg"]).ok


def test_text_maximum_reads_the_profile():
    assert checks.text_maximum(PROFILE, "GoodsItem", "description") == 200
    assert checks.text_maximum(PROFILE, "Declaration", "notes") == 500


# --- the command driver's locale ------------------------------------------------------------------

def test_command_driver_sets_an_installed_locale_only(monkeypatch):
    monkeypatch.setattr(command, "_installed_locales", lambda: frozenset({"vi_vn.utf8"}))
    assert command.posix_locale("vi-VN") == {"LANG": "vi_VN.UTF-8", "LC_ALL": "vi_VN.UTF-8"}
    monkeypatch.setattr(command, "_installed_locales", lambda: frozenset({"c.utf8"}))
    assert command.posix_locale("vi-VN") == {}
