"""Every case has a Vietnamese and an English title for the certificate, and no title names a lost case."""

from __future__ import annotations

from conformance.catalogue import all_cases
from conformance.titles import case_titles


def test_every_case_has_a_bilingual_title():
    titles = case_titles()
    missing = [s.id for s in all_cases() if s.id not in titles]
    assert not missing, f"cases without a title in conformance/cases/titles.toml: {missing}"
    empty = [cid for cid, t in titles.items() if not (t.get("vi", "").strip() and t.get("en", "").strip())]
    assert not empty, f"titles lacking vi or en: {empty}"


def test_no_title_for_a_case_that_does_not_exist():
    stale = sorted(set(case_titles()) - {s.id for s in all_cases()})
    assert not stale, f"titles.toml names no such case: {stale}"


def test_vietnamese_titles_are_vietnamese():
    """A copied English title in the vi slot would pass the presence test; Vietnamese has diacritics."""
    plain = [cid for cid, t in case_titles().items() if t["vi"].isascii()]
    assert not plain, plain
