"""Short case titles for the certificate, Vietnamese and English (``cases/titles.toml``).

Kept apart from the ``@case`` decorators so the translations can be reviewed in one file; every
catalogued case must have one (``tests/test_case_titles.py``).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

TITLES_FILE = Path(__file__).parent / "cases" / "titles.toml"


@cache
def case_titles(path: Path = TITLES_FILE) -> dict[str, dict[str, str]]:
    """``{case id: {"vi": ..., "en": ...}}``; the file's tables are the families."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {f"{family}.{name}": dict(title) for family, names in data.items() for name, title in names.items()}


def case_title(case_id: str) -> dict[str, str] | None:
    return case_titles().get(case_id)
