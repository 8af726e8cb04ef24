"""``ecdi`` subcommands, one module each.

A module here defines ``register(subparsers)``, which adds its subparser and sets ``func``;
``conformance.cli`` discovers the modules, so adding a command never edits a shared file.
Commands print one clear line on stderr for a usage or input problem and return 2; never a traceback.
"""
