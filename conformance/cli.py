"""``ecdi``: the harness's command line. Subcommands live in ``conformance/commands/``.

    ecdi run --sut reference --out DIR [--profile ecdi-1.0] [--time-scale S] [--mutant NAME] [--seed N]
    ecdi cases                  list the conformance cases with their requirement IDs
    ecdi mutants                list the reference DTS's named defects and the case meant to catch each
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pkgutil
import sys

from . import __version__, commands


class DefaultsShown(argparse.HelpFormatter):
    """``--help`` names every option's default: appended as ``(default: X)`` unless the text already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)".strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecdi", description="ECDI conformance harness")
    p.add_argument("--version", action="version", version=f"ecdi-conformance {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    for command in sub.choices.values():
        command.formatter_class = DefaultsShown
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.own_process = argv is None    # the process's own command line (not a call from a test)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("ecdi: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:            # `ecdi cases | head`: the reader left; nothing to say to it
        sys.stderr.close()
        return 141
    finally:
        if argv is None:               # the process's own command line: the process ends now
            # Its objects are left to the operating system: the interpreter's last garbage collection
            # would trace every one of them (about a second after a full run) to free memory about to go.
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
