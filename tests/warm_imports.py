"""Imported once by the fork server of ``warm_ecdi``: what ``ecdi`` imports, made before any child is forked.

Not imported: the modules pytest rewrites for its assertions in a run (``conformance.plugin``, the cases,
plugins registered through pytest's entry points); a check below stops the server if one slips in."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import sys
import threading

# the fork server's sys.path less its folder and PYTHONPATH's: what every interpreter starts with (site-packages,
# the editable install's finder), under the folder and PYTHONPATH of each child's own
_pythonpath = set(filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)))
INTERPRETER_PATH = [p for p in sys.path[1:] if p not in _pythonpath]

import conformance  # noqa: E402  (after the path is noted: importing may add to it)
import mock_server
import pytest  # noqa: F401
from _pytest.config import _iter_rewritable_modules

# imported only inside functions of the harness (the signed certificate.pdf), so not by the walk below
LATER_IMPORTS = ("reportlab.pdfbase.ttfonts", "reportlab.lib.styles", "reportlab.platypus", "reportlab.lib.pagesizes",
                 "asn1crypto.x509", "asn1crypto.keys", "pyhanko.stamp", "pyhanko.pdf_utils.embed",
                 "pyhanko.pdf_utils.incremental_writer", "pyhanko.sign.fields", "pyhanko.sign.signers",
                 "pyhanko_certvalidator.registry", "_pytest.junitxml", "_pytest.skipping", "_pytest.warnings",
                 "_pytest.faulthandler", "_pytest.helpconfig", "_pytest.unittest", "_pytest.threadexception")


def _rewritten_by_pytest(name: str) -> bool:
    return name == "conformance.plugin" or name.startswith("conformance.cases.")   # the package itself: by catalogue


for package in (conformance, mock_server):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not _rewritten_by_pytest(module.name):
            importlib.import_module(module.name)
for name in LATER_IMPORTS:
    importlib.import_module(name)

# the modules pytest marks for rewriting in a run, found as it finds them (_pytest.config._mark_plugins_for_rewrite)
_ENTRY_POINT_PLUGINS = {m for dist in importlib.metadata.distributions()
                        if any(e.group == "pytest11" for e in dist.entry_points)
                        for m in _iter_rewritable_modules([str(f) for f in dist.files or ()])}
_early = sorted(n for n in sys.modules if _rewritten_by_pytest(n) or n.split(".")[0] in _ENTRY_POINT_PLUGINS)
if _early or threading.active_count() != 1:
    raise RuntimeError(f"warm_imports: imported what pytest would rewrite ({_early}) or started a thread")
