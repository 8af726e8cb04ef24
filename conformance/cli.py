"""``ecdi``: the harness's command line. Subcommands live in ``conformance/commands/``.

    ecdi run --sut reference --out DIR [--profile ecdi-1.0] [--time-scale S] [--mutant NAME] [--seed N]
    ecdi cases                  list the conformance cases with their requirement IDs
    ecdi mutants                list the reference DTS's named defects and the case meant to catch each
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecdi", description="ECDI conformance harness")
    p.add_argument("--version", action="version", version=f"ecdi-conformance {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("ecdi: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
