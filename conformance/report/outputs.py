"""A run's output folder: each run starts clean, every file appears whole, and a killed run says so.

``begin`` (before pytest starts) moves an earlier run's outputs to ``<out>/previous/<timestamp>/``
(the newest ``PREVIOUS_KEPT`` are kept), including the product state under ``work/dts``, and leaves
a ``RUNNING`` marker and a results.json whose overall is INTERRUPTED: a run killed at any moment
claims no verdict. Files are written to a temporary name and renamed (``atomic_write``); pytest-html
and JUnit write theirs into ``<out>/.staging/`` and ``publish`` renames them into place. The session
end writes results.json, then the certificate, then removes the marker (``plugin.pytest_unconfigure``).

The test PKI (``work/pki``) and the local self-assessment key (``work/issuer``) are caches, not
outputs: they stay, so repeated runs into one folder neither regenerate RSA keys nor change key.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from ..files import atomic_write

RUNNING = "RUNNING"
STAGING = ".staging"
PREVIOUS = "previous"
PREVIOUS_KEPT = 3
# everything an earlier run may have left; nothing else in the folder is touched
OUTPUTS = ("results.json", "report.html", "junit.xml", "certificate.html", "certificate.pdf", "certificate-issuer.pub.pem",
           "certificate-issuer.crt.pem", "setup-error.txt", "evidence", "work/dts", "work/gateway", RUNNING, STAGING)
PLACEHOLDER_REASON = "the run has not finished: it is running, or it was killed before writing its results"


class RunNotFinished(Exception):
    """The folder holds a run that is still running or was killed; ``str()`` says which folder."""


def write_json(path: Path, data, **dump_options) -> Path:
    return atomic_write(path, json.dumps(data, ensure_ascii=False, **dump_options))


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def set_aside(out: Path, keep: int = PREVIOUS_KEPT) -> Path | None:
    """Move the earlier run's outputs to ``out/previous/<timestamp>/``; the folder, or None if none."""
    out = Path(out)
    found = [name for name in OUTPUTS if (out / name).exists()]
    if not found:
        return None
    target = out / PREVIOUS / _stamp()
    for name in found:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(out / name, target / name)
    for old in sorted((out / PREVIOUS).iterdir())[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return target


def begin(out: Path) -> Path | None:
    """Prepare ``out`` for a new run; returns where the earlier run's outputs went (None: there were none)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    moved = set_aside(out)
    (out / STAGING).mkdir()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(out / "results.json", placeholder(started), indent=2)
    atomic_write(out / RUNNING, f"pid {os.getpid()} started {started}\n")
    return moved


def placeholder(started_at: str, *, status: str = "running", reason: str = PLACEHOLDER_REASON) -> dict:
    from .results import INTERRUPTED, RESULTS_FORMAT

    return {"format": RESULTS_FORMAT, "overall": INTERRUPTED, "status": status, "started_at": started_at,
            "reason": reason, "cases": []}


def stopped_early(out: Path, reason: str) -> None:
    """The session ended before any case was recorded: the placeholder says so instead of 'running'."""
    path = Path(out) / "results.json"
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if current.get("status") == "running":
        write_json(path, placeholder(current.get("started_at", ""), status="stopped", reason=reason), indent=2)


def staged(out: Path, name: str) -> Path:
    return Path(out) / STAGING / name


def publish(out: Path, *, last: str | None = None) -> list[Path]:
    """Rename every staged file into ``out`` (``last`` after the others) and drop the staging folder."""
    out, done = Path(out), []
    staging = out / STAGING
    if staging.is_dir():
        for f in sorted(staging.iterdir(), key=lambda f: (f.name == last, f.name)):
            if f.is_file() and not f.name.endswith(".part"):
                os.replace(f, out / f.name)
                done.append(out / f.name)
        shutil.rmtree(staging, ignore_errors=True)
    return done


def end(out: Path) -> None:
    (Path(out) / RUNNING).unlink(missing_ok=True)


def check_finished(folder: Path) -> None:
    """Raise ``RunNotFinished`` if ``folder`` (a run's output folder or its ``evidence/``) holds a
    run that never reached its end: its files cannot be judged."""
    folder = Path(folder)
    for candidate in (folder, folder.parent) if folder.name == "evidence" else (folder,):
        if (candidate / RUNNING).exists():
            raise RunNotFinished(f"{candidate}: the run there did not finish ({RUNNING} marker present: "
                                 f"still running, or killed); its outputs claim no verdict")
