"""Writing a file so that a reader, or a kill, sees the old file or the whole new one — never a part.

One helper for the harness's outputs and its test PKI (the reference DTS, a product of its own, keeps
its own durable writes: it shares no code with the harness beyond the codec).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a reader
    (or a kill) sees the old file or the whole new one, never a part; on any failure nothing is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_toml(path: Path, error: Callable[[Path, str, str], Exception]) -> dict:
    """A TOML file's data; one that cannot be read or parsed raises ``error(path, "", why)`` so the user reads
    one line naming the file (never a traceback)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(path, "", f"cannot be read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(path, "", f"is not valid TOML 1.0: {exc}") from None
