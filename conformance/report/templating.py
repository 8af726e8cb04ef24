"""The one Jinja2 environment for the report pages: server-side, autoescaped (every value is data)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape


@cache
def environment() -> Environment:
    return Environment(loader=PackageLoader("conformance.report", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), keep_trailing_newline=True)
