"""``ecdi`` subcommands, one module each.

A module here defines ``register(subparsers)``, which adds its subparser and sets ``func``;
``conformance.cli`` discovers the modules, so adding a command never edits a shared file.
Commands print one clear line on stderr for a usage or input problem and return 2; never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path


def not_a_folder(**options: str | None) -> bool:
    """Say (one line on stderr) the first option whose value names a file where a folder is wanted; True if
    one did. A folder that does not exist yet is fine: it is made."""
    for name, value in options.items():
        if value is not None and Path(value).exists() and not Path(value).is_dir():
            print(f"ecdi: --{name.replace('_', '-')} {value} is a file; give a folder (made if missing)",
                  file=sys.stderr)
            return True
    return False
