"""``ecdi run``: a conformance session. Exit codes (README's table): 0 CONFORMANT, 1 NOT CONFORMANT,
2 usage or set-up error, 3 INCOMPLETE (not every applicable case ran), 4 INTERRUPTED.

An earlier run's outputs in ``--out`` are moved to ``<out>/previous/<timestamp>/`` first
(``report.outputs``): nothing of it survives into this run, the product state included.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path


def register(sub) -> None:
    run = sub.add_parser("run", help="run a conformance session")
    run.add_argument("--sut", default="reference", help="system under test: 'reference' (the built-in reference DTS, default) or the path of a sut.toml (docs/drivers.md)")
    run.add_argument("--gateway", metavar="GATEWAY_TOML",
                     help="certify a customs gateway instead of a DTS: the path of its gateway statement "
                          "(docs/gateway-certification.md); the harness plays the DTS and runs the cgw-* cases")
    run.add_argument("--out", required=True, help="output folder (report.html, results.json, junit.xml, certificate.html)")
    run.add_argument("--profile", default="ecdi-1.0", help="ECDI profile (version) to test against: "
                                                         "ecdi-1.0 or ecdi-1.1 (fixtures/profiles/)")
    run.add_argument("--time-scale", type=float, default=1.0,
                     help="timer scale 0 < s <= 1 (spec §2.1): 1 is the real timers (the whole catalogue takes about "
                          "21 min); s < 1 is a faster self-assessment, never a certification (0.05: about 20 s)")
    run.add_argument("--mutant", help="reference DTS only: run with this named defect, or a named configuration "
                                      "such as legacy-1.0 (see `ecdi mutants`)")
    run.add_argument("--seed", type=int, help="test-data seed (default: drawn at random; recorded in results.json, "
                                              "give it to repeat a run's data)")
    run.add_argument("--case", action="append", help="run only this case id (repeatable)")
    run.add_argument("--pki-dir", help="reuse a generated test PKI folder")
    run.add_argument("--jobs", type=int, help="cases run at once, each in its own gateway session and DTS "
                                              "(default 8; a sut.toml product: at most its [driver] instances)")
    run.add_argument("--shared-gateway", metavar="URL",
                     help="run against this running `ecdi gateway` (its base URL, e.g. https://127.0.0.1:8443) "
                          "instead of starting one: each job opens its own session there; needs --pki-dir (the "
                          "gateway's test PKI folder) and its control token")
    run.add_argument("--control-token-file", help="file holding the shared gateway's control token "
                                                  "(default: env ECDI_CONTROL_TOKEN)")
    run.add_argument("--issuer-key", help="private key (PEM, Ed25519 or RSA) that signs the certificate "
                                          "(default: a local self-assessment key; env ECDI_ISSUER_KEY)")
    run.add_argument("--issuer-role", choices=("self-assessment", "customs"),
                     help="role of --issuer-key: customs IT's key heads the certificate CERTIFIED (env ECDI_ISSUER_ROLE)")
    from ..progress import MODES

    run.add_argument("--progress", choices=MODES, default="auto",
                     help="console progress on stderr: live on a terminal, plain lines in a log (auto picks), "
                          "or off (pytest's dots)")
    run.set_defaults(func=_run)


def _run(args) -> int:
    import pytest

    from ..catalogue import CASES_DIR, all_cases
    from ..harness import HarnessOptions, SetupError
    from ..party import party_of
    from ..progress import PytestProgress
    from ..report import outputs
    from ..report.certificate import overall_text
    from ..report.results import INCOMPLETE
    from ..sut import looks_like_sut_file
    from . import not_a_folder

    if looks_like_sut_file(args.sut):  # the pytest run must find the same file whatever its folder
        args.sut = str(Path(args.sut).resolve())
    if args.gateway and (args.mutant or args.sut != "reference" or args.shared_gateway):
        print("ecdi: --gateway certifies a gateway; --sut, --mutant and --shared-gateway are for a DTS run: give one "
              "or the other", file=sys.stderr)
        return 2
    if args.control_token_file and not args.shared_gateway:
        print("ecdi: --control-token-file is for --shared-gateway", file=sys.stderr)
        return 2
    token_file = str(Path(args.control_token_file).resolve()) if args.control_token_file else None
    gateway = Path(args.gateway).resolve() if args.gateway else None
    options = HarnessOptions(sut=args.sut, mutant=args.mutant, profile_id=args.profile,
                             time_scale=args.time_scale, jobs=args.jobs, gateway=gateway,
                             shared_gateway=args.shared_gateway, control_token_file=token_file,
                             pki_dir=Path(args.pki_dir) if args.pki_dir else None)
    party = party_of(options)
    harness = party.harness(options)
    try:
        harness.prepare()
    except SetupError as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    if args.issuer_key or args.issuer_role:  # a key that cannot be used is named now, not after the run
        from ..issuer import IssuerError, resolve_issuer

        try:
            resolve_issuer(Path(args.out) / "work" / "issuer", args.issuer_key, args.issuer_role)
        except IssuerError as exc:
            print(f"ecdi: {exc}", file=sys.stderr)
            return 2
    unknown = sorted(set(args.case or []) - {c.id for c in all_cases() if c.party == party.name})
    if unknown:
        print(f"ecdi: unknown case id(s): {', '.join(unknown)} (not cases of a {party.name} run); see `ecdi cases`",
              file=sys.stderr)
        return 2
    if not_a_folder(out=args.out, pki_dir=args.pki_dir):
        return 2
    out = Path(args.out).resolve()
    try:
        moved = outputs.begin(out)
    except OSError as exc:
        print(f"ecdi: --out {out}: cannot prepare the output folder: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if moved is not None:
        print(f"ecdi: the earlier run's outputs were moved to {moved}", file=sys.stderr)
    results_path = out / "results.json"
    argv = [
        str(CASES_DIR),
        "-c", str(CASES_DIR / "pytest.ini"),
        "--rootdir", str(CASES_DIR),
        "-p", "conformance.plugin",
        # only the plugins a run uses (_PLUGINS; no others are loaded, see _only_named_plugins): test-suite
        # plugins installed beside the harness (its own tests' extras) have no part in a run (hypothesis's
        # end-of-run summary alone imports for a second or more), nor the hunt for unraisable exceptions
        # (repeated garbage collections at the end)
        *[a for name in _PLUGINS for a in ("-p", name)],
        *[a for name in _NOT_IN_A_RUN for a in ("-p", f"no:{name}")],
        "-q",
        f"--html={outputs.staged(out, 'report.html')}", "--self-contained-html",
        f"--junitxml={outputs.staged(out, 'junit.xml')}",
        f"--ecdi-sut={args.sut}",
        f"--ecdi-profile={args.profile}",
        f"--ecdi-time-scale={args.time_scale}",
        f"--ecdi-out={out}",
    ]
    plugins = []
    mode = args.progress
    if mode == "auto" and getattr(getattr(harness, "sut_file", None), "driver_kind", None) == "manual":
        mode = "plain"   # the operator's prompts share the terminal: no panel redrawn over them
    if mode != "off":    # the progress says it all: no pytest dots or progress column either
        argv += ["-o", "console_output_style=classic"]
        plugins.append(PytestProgress(mode))
    if args.mutant:
        argv.append(f"--ecdi-mutant={args.mutant}")
    if gateway is not None:
        argv.append(f"--ecdi-gateway={gateway}")
    if args.seed is not None:
        argv.append(f"--ecdi-seed={args.seed}")
    if args.pki_dir:
        argv.append(f"--ecdi-pki-dir={args.pki_dir}")
    if args.jobs is not None:
        argv.append(f"--ecdi-jobs={args.jobs}")
    if args.shared_gateway:
        argv.append(f"--ecdi-shared-gateway={args.shared_gateway}")
    if token_file:
        argv.append(f"--ecdi-control-token-file={token_file}")
    if args.issuer_key:
        argv.append(f"--ecdi-issuer-key={Path(args.issuer_key).resolve()}")
    if args.issuer_role:
        argv.append(f"--ecdi-issuer-role={args.issuer_role}")
    argv += [f"--ecdi-case={c}" for c in args.case or []]
    if getattr(args, "own_process", False):
        _collect_less()
    try:
        with _only_named_plugins():
            code = pytest.main(argv, plugins=plugins)
    except KeyboardInterrupt:     # before pytest's session took charge: the placeholder says INTERRUPTED
        code = pytest.ExitCode.INTERRUPTED
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    if results.get("status") and code == pytest.ExitCode.INTERRUPTED:
        outputs.stopped_early(out, "interrupted before any case was recorded")
        outputs.publish(out)
        outputs.end(out)
        print(f"ecdi: interrupted before any case finished; {out} holds no verdict", file=sys.stderr)
        return EXIT_CODES["INTERRUPTED"]
    if results.get("status") or not results:   # still the placeholder
        print(f"ecdi: the run wrote no results ({results_path}); see the output above", file=sys.stderr)
        return 2
    if results.get("setup_error"):
        print(f"ecdi: the session could not start: {results['setup_error']}", file=sys.stderr)
        return 2
    print(f"\n{overall_text(results)}: {results['sut']['product']} {results['sut']['version']} "
          f"on {results['profile']['id']} (time scale {results['time_scale']}, seed {results['seed']})")
    for c in results["cases"]:
        print(f"  {c['verdict']:<15} {c['id']:<42} {' '.join(c['requirements'])}")
    for cause, ids in (results.get("setup_failures") or {}).items():
        print(f"{len(ids)} case(s) inconclusive because setup failed: {cause} ({', '.join(ids)})")
    claims = results.get("claims") or {}
    for key, label in (("exhibited_not_claimed", "exhibited on the wire but not claimed (CAP-04)"),
                       ("claimed_not_exhibited", "claimed but never exhibited in this run")):
        if claims.get(key):
            print(f"capabilities {label}: {', '.join(claims[key])}")
    missing = (results.get("scope") or {}).get("missing") or []
    if results["overall"] == INCOMPLETE:
        print(f"not run ({len(missing)} applicable case(s)): {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    counts = Counter(c["verdict"] for c in results["cases"])
    print(f"{overall_text(results)}: {len(results['cases'])} cases, "
          + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    if results["time_scale"] < 1:
        print(f"time scale {results['time_scale']} < 1: a self-assessment (spec §2.1), never a certification")
    print(f"outputs: {out}\nreport: {out / 'report.html'}\ncertificate: {out / 'certificate.html'}")
    if (out / "certificate.pdf").is_file():
        print(f"certificate (signed PDF): {out / 'certificate.pdf'}")
    return EXIT_CODES.get(results["overall"], 1)


def _collect_less() -> None:
    """The process's garbage collector traces less while the session runs (≈ 0.1 CPU-s of a short session
    less): the modules, profile and options loaded by now live as long as the process, so they are set
    aside (``gc.freeze``) rather than traced by every full collection, and young objects are collected
    every 10,000 allocations rather than every 700."""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


@contextmanager
def _only_named_plugins():
    """pytest loads the plugins ``-p`` names, not every one installed (PYTEST_DISABLE_PLUGIN_AUTOLOAD, read
    as ``pytest.main`` starts; ``--disable-plugin-autoload`` needs pytest 8.4)."""
    before = os.environ.get(_AUTOLOAD)
    os.environ[_AUTOLOAD] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_AUTOLOAD, None)
        else:
            os.environ[_AUTOLOAD] = before


_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
# pytest-html (report.html) and the metadata it reads, by module: `-p html` would have pytest mark the standard
# library's ``html`` (imported already) for assertion rewriting, and warn
_PLUGINS = ("pytest_html.plugin", "pytest_metadata.plugin")
_NOT_IN_A_RUN = ("unraisableexception",)

EXIT_CODES = {"CONFORMANT": 0, "NOT CONFORMANT": 1, "INCOMPLETE": 3, "INTERRUPTED": 4}
