"""SEC-01 / SEC-02: clear-text secrets in the product's files."""

from __future__ import annotations

from ..case import Check


# --- SEC-01 / SEC-02: clear-text secrets in the product's files --------------------------------------

MAX_INSPECTED_BYTES = 64 * 1024 * 1024     # per file: a larger file is read only this far (and said so)


def secret_encodings(secret: str) -> list[bytes]:
    """A secret as it may sit in a file: UTF-8, UTF-16LE (Windows settings), base64 of the UTF-8 octets."""
    import base64

    raw = secret.encode("utf-8")
    return [raw, secret.encode("utf-16-le"), base64.b64encode(raw)]


def private_key_encodings(key) -> list[bytes]:
    """An exported private key: PKCS#8 and traditional DER, unencrypted, and the first base64 line of each
    as PEM writes it (64 characters of the DER's base64)."""
    import base64

    from cryptography.hazmat.primitives import serialization

    out = []
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        out += [der, base64.b64encode(der)[:64]]
    return out


def search_files(paths, needles: dict[str, list[bytes]]) -> dict:
    """Every file under ``paths`` searched for every encoding of every named needle.
    Returns ``{"files": n, "roots": [...], "hits": [{"secret", "file", "encoding"}], "missing": [...]}``."""
    from pathlib import Path

    files, hits, missing, roots = 0, [], [], [str(p) for p in paths]
    for root in map(Path, paths):
        if not root.exists():
            missing.append(str(root))
            continue
        for path in ([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())):
            try:
                with open(path, "rb") as fh:
                    data = fh.read(MAX_INSPECTED_BYTES)
            except OSError:
                continue
            files += 1
            for name, encodings in needles.items():
                for i, needle in enumerate(encodings):
                    if needle and needle in data:
                        hits.append({"secret": name, "file": str(path), "encoding": i})
    return {"files": files, "roots": roots, "hits": hits, "missing": missing}


def no_secret_in_files(search: dict, names: list[str], what: str) -> Check:
    """SEC-01/SEC-02: none of the named secrets was found in the product's files."""
    if not search["files"]:
        return Check(False, f"no product file could be inspected under {search['roots']} "
                            f"(missing: {search['missing']}); nothing to judge {what} by")
    found = [h for h in search["hits"] if h["secret"] in names]
    if found:
        first = found[0]
        return Check(False, f"{first['secret']} found in {first['file']} ({len(found)} hit(s) in all): {what}",
                     {"hits": found[:20]})
    return Check(True, f"{search['files']} product file(s) under {', '.join(search['roots'])} hold no "
                       f"{' / '.join(names)} (clear, UTF-16LE or base64)")


def journal_per_submission(per: list[dict], whole: list[dict], submission: str) -> Check:
    """SEC-06: the export for one submission holds that submission's events — all of them, nothing else."""
    foreign = [e for e in per if e.get("submission") != submission]
    if foreign:
        return Check(False, f"the export for submission {submission} holds {len(foreign)} event(s) of others "
                            f"(first: {foreign[0].get('event')!r} of {foreign[0].get('submission')!r})")
    expected = [e for e in whole if e.get("submission") == submission]
    key = lambda e: (e.get("time"), e.get("event"), e.get("messageId"))   # noqa: E731
    if sorted(map(key, per)) != sorted(map(key, expected)):
        return Check(False, f"the export for submission {submission} holds {len(per)} event(s); the whole "
                            f"export has {len(expected)} for it")
    return Check(True, f"the export for submission {submission} holds exactly its {len(per)} event(s)")
