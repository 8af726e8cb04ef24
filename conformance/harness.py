"""One conformance session: test PKI, the mock gateway, the driver, and where outputs go.

This is the adapter layer (the TTCN-3 "system adapter"): the only place that knows the gateway is a
thread in this process and that the reference DTS is in-process. Cases see ``CaseContext`` only.
"""

from __future__ import annotations

import importlib
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from . import __version__
from .codec.fingerprint import Fingerprinter, new_key
from .drivers import load_driver
from .drivers.base import DriverError, Environment, LocalAccount
from .gateway_control import GatewayControl
from .lanes import DEFAULT_JOBS, driver_instances, open_lanes
from . import pki_matrix
from .pki import TestPKI
from .profile import ProfileError, load_profile
from .testdata import TestData

DEFAULT_USER = "nguyenvana"
# SEC-08: the reference DTS's local users, each with a CGW account of his or her own (maker/checker).
REFERENCE_ACCOUNTS = (("a.nguyen", DEFAULT_USER), ("b.tran", "tranthib"))
DEFAULT_OFFICE = "03TG"
BRANCH_SUFFIX = "-001"    # the declarant's branch (SIG-09, ENV-09): case_environment(branch=True)


PRIVATE_README = """PRIVATE - do not share this folder.
It holds the run's secrets: the test PKI's private keys and the PKCS#12 password (pki/), the local
self-assessment signing key (issuer/), the product's state (dts/) and the gateway's state (gateway/).
What is shared is beside it: results.json, report.html, junit.xml, certificate.html,
certificate-issuer.pub.pem and evidence/ (the bundle), which hold passwords and OTPs only as keyed
fingerprints and no private key.
"""


class SetupError(Exception):
    """The session could not start (bad SUT, unclaimed profile, PKI or gateway failure)."""


@dataclass
class HarnessOptions:
    sut: str = "reference"
    mutant: str | None = None
    profile_id: str = "ecdi-1.0"
    time_scale: float = 1.0
    out_dir: Path = Path("out")
    seed: int | None = None
    pki_dir: Path | None = None          # reuse a generated PKI (tests); default: <out>/work/pki
    jobs: int | None = None              # cases at once (lanes.py); None: lanes.DEFAULT_JOBS
    gateway: Path | None = None          # a gateway statement: certify that CGW (party.py), not a DTS
    shared_gateway: str | None = None    # base URL of a running ``ecdi gateway`` to use (shared_gateway.py)
    control_token_file: str | None = None   # its control token (default: $ECDI_CONTROL_TOKEN)


@dataclass
class Harness:
    options: HarnessOptions
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def prepare(self) -> None:
        """Validate the options and load profile, driver and SUT statement; starts nothing.

        The CLI calls this before pytest so that a usage mistake is one clear line, not a run of
        ERROR verdicts. Every failure is a SetupError naming its cause.
        """
        o = self.options
        if not 0 < o.time_scale <= 1:
            raise SetupError(f"--time-scale must satisfy 0 < s <= 1 (spec §2.1), got {o.time_scale}")
        if o.jobs is not None and o.jobs < 1:
            raise SetupError(f"--jobs must be at least 1, got {o.jobs}")
        try:
            self.profile = load_profile(o.profile_id)
            self.driver = load_driver(o.sut, mutant=o.mutant)
        except (ProfileError, DriverError) as exc:
            raise SetupError(str(exc)) from None
        self.sut = self.driver.describe()
        limit = driver_instances(self.driver)     # a product that cannot run several instances runs one job
        self.jobs = (o.jobs or DEFAULT_JOBS) if limit is None else min(o.jobs or DEFAULT_JOBS, limit)
        self.sut_file = getattr(self.driver, "sut", None)  # a sut.toml's SutFile; None for the reference DTS
        if o.time_scale < 1 and not self.sut.pixit.get("time_scale_supported", False):
            raise SetupError(f"the SUT does not state pixit.time_scale_supported = true, so it is tested with "
                             f"--time-scale 1 (CAP-08), not {o.time_scale}")
        if self.profile.version not in self.sut.statement.get("profile", []):
            raise SetupError(
                f"the SUT claims profiles {self.sut.statement.get('profile')}, not {self.profile.version} "
                f"({self.profile.id}); choose a claimed profile with --profile"
            )
        self.time_scale = o.time_scale
        if o.shared_gateway:
            self._prepare_shared()
        self.seed = o.seed if o.seed is not None else secrets.randbelow(2**31)
        self.data = TestData(self.seed)

    def _prepare_shared(self) -> None:
        from .shared_gateway import SharedGatewayError, control_token

        if self.options.pki_dir is None:
            raise SetupError("--shared-gateway needs --pki-dir: the shared gateway's test PKI folder (its data "
                             "folder's pki/, printed by `ecdi gateway`), whose CAs the gateway and this run share")
        if getattr(self.sut_file, "driver_kind", None) == "manual":
            raise SetupError("--shared-gateway: the manual driver's operator watches the live page of the run's own "
                             "gateway; run it without --shared-gateway")
        try:
            self.control_token = control_token(self.options.control_token_file)
        except SharedGatewayError as exc:
            raise SetupError(str(exc)) from None

    @property
    def shared(self) -> bool:
        """Whether the run uses a gateway it did not start (``--shared-gateway``)."""
        return bool(self.options.shared_gateway)

    def start(self) -> None:
        self.prepare()
        o = self.options
        if not self.shared:    # the gateway's modules load while the test PKI's keys are made (no GIL held)
            threading.Thread(target=_import_quietly, args=("mock_server.app",), name="ecdi-import-gateway",
                             daemon=True).start()
        self.work_dir = o.out_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "README.txt").write_text(PRIVATE_README, encoding="utf-8")
        # the product's state belongs to this run: never an earlier run's (ecdi run moves those aside first)
        shutil.rmtree(self.work_dir / "dts", ignore_errors=True)
        shutil.rmtree(self.work_dir / "gateway", ignore_errors=True)
        # passwords and OTPs are kept in the evidence and on tapes as fingerprints under this run's key
        # (codec/fingerprint.py); the key is in memory only, so nothing shared lets one test a guess
        key = new_key()
        self.fingerprint = Fingerprinter(key)
        self.pki = TestPKI.ensure(o.pki_dir or self.work_dir / "pki").for_tax_code(self.data.tax_code)
        crl_problem = self._serve_crl()
        # (local user, UserId): a sut.toml's [[account]]s are known by their UserId alone
        local = tuple((u, u) for u in self.sut_file.accounts) if self.sut_file else REFERENCE_ACCOUNTS
        if self.shared:
            self.gateway = self._shared_gateway()
            local = tuple((name, self.gateway.user(user)) for name, user in local)
        self._fingerprint_key = key
        users = tuple(user for _, user in local)
        self.passwords = {user: secrets.token_urlsafe(12) for user in users}  # one per user (SEC-08)
        self.password = self.passwords[users[0]]
        self._install_pki()
        tax_code = self.pki.declarant_tax_code
        evidence_dir = o.out_dir / "evidence"
        evidence_dir.mkdir(parents=True, exist_ok=True)
        if self.shared:
            self.gateway_control = self.gateway.control     # the gateway's default session: lanes open their own
        else:
            self._start_gateway(evidence_dir, key, tax_code)
        self.environment = Environment(
            profile_id=self.profile.id,
            endpoint=self.gateway.endpoint_url,
            tls_ca_pem=self.pki.tls_ca_pem,
            sign_anchor_pem=self.pki.sign_anchor_pem,
            ca_trust_list_pem=self.pki.trust_list_pem,
            p12=self.pki.declarant.p12,
            p12_password=self.pki.declarant.p12_password,
            user_id=users[0],
            password=self.password,
            tax_code=tax_code,
            declarant_name=self.pki.declarant_name,
            office=DEFAULT_OFFICE,
            office_name=self.profile.offices[DEFAULT_OFFICE],
            time_scale=self.time_scale,
            work_dir=self.work_dir / "dts",
            accounts=tuple(LocalAccount(name, user, self.passwords[user]) for name, user in local),
            crl_url=self.pki.crl_url, crl_path=self.pki.crl_der, crl_problem=crl_problem,
            crl_access=self.sut_file.crl if self.sut_file else "distribution-point",   # the reference DTS fetches
        )
        attach = getattr(self.driver, "attach_gateway", None)
        if attach is not None:  # the manual driver watches the gateway for the product's traffic
            attach(self.gateway_control)

    def _start_gateway(self, evidence_dir: Path, key: bytes, tax_code: str) -> None:
        """The run's own gateway, in a thread of this process."""
        from mock_server import Account, GatewayConfig, run_in_thread  # adapter-only import

        self.gateway = run_in_thread(
            GatewayConfig(
                profiles=[self.profile.id],
                pki_folder=self.pki.folder,
                evidence_db=evidence_dir / "evidence.sqlite3",
                state_db=self.work_dir / "gateway" / "state.sqlite3",   # private: never in the bundle
                fingerprint_key=key,
                time_scale=self.time_scale,
                accounts=[Account(user, password, [tax_code]) for user, password in self.passwords.items()],
                registered_certs=self._registered_certs(tax_code),
                # one product, one case at a time: one worker process is enough, and every ``ecdi run``
                # (96 of them in a mutant score) would pay another's start
                cpu_workers=1,
            )
        )
        self.gateway_control = GatewayControl(
            self.gateway.control_url, token=self.gateway.control_token, ca_pem=self.pki.tls_ca_pem
        )

    def _shared_gateway(self):
        from .shared_gateway import SharedGateway, SharedGatewayError

        try:
            return SharedGateway(self.options.shared_gateway, self.control_token, tls_ca_pem=self.pki.tls_ca_pem,
                                 profile=self.profile, time_scale=self.time_scale)
        except SharedGatewayError as exc:
            raise SetupError(str(exc)) from None

    def open_session(self, name: str, accounts: list[dict]) -> GatewayControl:
        """A gateway session of the run's own for a lane (``lanes.open_lanes``)."""
        if not self.shared:
            return self.gateway_control.create_session(name, accounts)
        if not hasattr(self, "_session_certificates"):     # the same for every lane
            self._session_certificates = {
                tax: [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs]
                for tax, certs in self._registered_certs(self.pki.declarant_tax_code).items()}
        return self.gateway.open_session(name, accounts, certificates=self._session_certificates,
                                         key=self._fingerprint_key)

    def _registered_certs(self, tax_code: str) -> dict:
        """SIG-11, registered out of band: the declarant certificate and the matrix certificates the
        gateway must accept (``expected_code`` None) for the tax code, and the parent's certificate for
        its branch ``BRANCH_SUFFIX`` (SIG-09: a branch signs with its parent's certificate)."""
        usable = [self.pki.declarant.cert] + [pki_matrix.identity(self.pki, e).cert for e in pki_matrix.MATRIX
                                              if e.expected_code is None and e.registered and e.tax_code is None]
        return {tax_code: usable, f"{tax_code}{BRANCH_SUFFIX}": usable}

    def _serve_crl(self) -> str:
        """SIG-12: serve the declarant CA's CRL at the distribution point the certificates name, with every
        revocation of the matrix already in it; "" when served, else why not (the revocation findings are
        then INCONCLUSIVE, never FAIL: a correct product cannot reach what the harness does not serve)."""
        from .crl_server import CrlServer

        for entry in pki_matrix.MATRIX:
            if entry.variant.get("revoked"):
                pki_matrix.identity(self.pki, entry)
        self.crl_server = CrlServer(self.pki.folder, self.pki.crl_port)
        return self.crl_server.start() or self.crl_server.verify(self.pki.crl_url, self.pki.crl_der) or ""

    def _install_pki(self) -> None:
        """Copy the test PKI where the SUT file's ``[install]`` says the product reads it (CAP-07)."""
        if self.sut_file is None:
            return
        files = {"tls_ca": self.pki.tls_ca_pem, "sign_anchor": self.pki.sign_anchor_pem,
                 "ca_trust_list": self.pki.trust_list_pem, "p12": self.pki.declarant.p12, "crl": self.pki.crl_der}
        try:
            self.sut_file.install_pki(files)
        except OSError as exc:
            raise SetupError(f"{self.sut_file.path}: [install] failed: {exc}") from None

    def case_environment(self, case_id: str, certificate: str | None = None, *, branch: bool = False,
                         endpoint: str | None = None) -> Environment:
        """A fresh DTS state folder per case, so one case's state never leaks into another's verdict;
        with ``certificate``, the named test certificate of the matrix (``pki_matrix``) installed; with
        ``branch``, the DTS acts for the declarant's branch (tax code + ``BRANCH_SUFFIX``) while keeping
        the parent's certificate (SIG-09)."""
        from dataclasses import replace

        env = replace(self.environment, work_dir=self.work_dir / "dts" / case_id)
        if branch:
            env = replace(env, tax_code=env.tax_code + BRANCH_SUFFIX, work_dir=env.work_dir / "as-branch")
        if endpoint is not None:   # a TLS probe's cgw_endpoint (``tls_probe``), with a state folder of its own
            env = replace(env, endpoint=endpoint, work_dir=env.work_dir / f"at-{urlsplit(endpoint).port}")
        if certificate is None:
            return env
        try:
            entry = pki_matrix.BY_NAME[certificate]
        except KeyError:
            raise SetupError(f"no test certificate {certificate!r}; known: {', '.join(pki_matrix.BY_NAME)}") from None
        identity = pki_matrix.identity(self.pki, entry)
        return replace(env, p12=identity.p12, p12_password=entry.p12_password or self.pki.p12_password,
                       certificate=certificate,
                       work_dir=env.work_dir / f"with-{certificate}")

    def tls_probe(self, variant: str):
        """The TLS probe listener of ``variant`` (mock_server.tls_probe), started on first use; it relays
        what it accepts to the gateway. SetupError names an unknown variant."""
        from mock_server.tls_probe import VARIANTS, TlsProbes  # adapter-only import

        if variant not in VARIANTS:
            raise SetupError(f"no TLS probe variant {variant!r}; known: {', '.join(VARIANTS)}")
        if getattr(self, "tls_probes", None) is None:
            self.tls_probes = TlsProbes(self.pki, self.gateway.endpoint_url)
        return self.tls_probes.get(variant)

    def open_lanes(self, cases: int) -> list:
        """The lanes the ``cases`` of the run are spread over: ``jobs`` of them, never more than cases."""
        self.lanes = []              # filled as they open: stop() closes those that did if one cannot
        open_lanes(self, max(1, min(self.jobs, cases)), self.lanes)
        return self.lanes

    def stop(self) -> None:
        if self.shared and getattr(self, "gateway", None) is not None:
            try:   # before the lanes close their sessions' clients; a failure leaves the bundle without evidence
                self.gateway.export_evidence([lane.gateway_control for lane in getattr(self, "lanes", ())],
                                             self.options.out_dir / "evidence" / "evidence.sqlite3")
            except Exception as exc:  # noqa: BLE001 - the run still reports; its evidence head is then absent
                self.evidence_problem = f"the shared gateway's evidence could not be copied: {exc}"
        lanes = list(getattr(self, "lanes", ()))
        if len(lanes) > 1:    # at once: each waits for its TLS probes' threads to notice (up to 0.1 s a probe)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(lanes), thread_name_prefix="ecdi-lane-stop") as pool:
                for done in [pool.submit(lane.stop) for lane in lanes]:
                    done.result()
        else:
            for lane in lanes:
                lane.stop()
        close = getattr(getattr(self, "driver", None), "close", None)
        if close is not None:   # the command driver's server mode: the product's long-lived process
            close()
        probes = getattr(self, "tls_probes", None)
        if probes is not None:
            probes.stop()
        gw = getattr(self, "gateway", None)
        if gw is not None:
            gw.stop()
        crl_server = getattr(self, "crl_server", None)
        if crl_server is not None:
            crl_server.stop()

    @property
    def prepared(self) -> bool:
        return hasattr(self, "seed")

    def describe(self) -> dict:
        """The session facts that results.json and the certificate state (empty before ``prepare``)."""
        if not self.prepared:
            return {}
        return {
            **session_facts(self, "DTS"),
            "sut": {
                "driver": self.options.sut,
                "vendor": self.sut.vendor,
                "vendor_tax_code": self.sut.statement.get("vendor_tax_code"),
                "product": self.sut.product,
                "version": self.sut.version,
                "capabilities": self.sut.capabilities,
                "mutant": self.sut.mutant,
                "build_hash": self.sut.build_hash,
            },
            "declarant_tax_code": self.data.tax_code,       # drawn from the seed (anti-gaming)
            **({"shared_gateway": {**self.gateway.describe(), "evidence_problem": getattr(self, "evidence_problem", None)}}
               if self.shared and getattr(self, "gateway", None) is not None else {}),
        }


def _import_quietly(module: str) -> None:
    """Import ``module`` ahead of its use; a failure is left to that use, which reports it as set-up."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - the gateway's start names it (SetupError / ERROR with its cause)
        pass


def session_facts(session, party: str) -> dict:
    """What results.json and the certificate state of any session, whichever party it tested (``party.py``)."""
    profile = session.profile
    return {"harness": {"name": "ecdi-conformance", "version": __version__}, "party": party,
            "profile": {"id": profile.id, "version": profile.version, "hash": profile.content_hash()},
            "time_scale": session.time_scale, "seed": session.seed, "started_at": session.started_at}
