"""The ``http`` driver: each user action is a JSON POST to an automation endpoint the vendor exposes.

For products that are services (Java, .NET) a small automation API is easier than a command line.
The request and response bodies are the command driver's (docs/drivers.md), so the Outcome mapping
is shared. The request carries the CGW password and the PKCS#12 password, so plain ``http://`` is
allowed only to a loopback address; anything else must be ``https://`` (SEC-01). Proxies are never
used: the endpoint sits on the test bench, and a proxy would see the passwords.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from ..sut import SutFile
from .base import Action, DriverError, Environment, Outcome
from .configured import ConfiguredDriver
from .command import DEFAULT_TIMEOUT_S
from .protocol import ACTIONS, SECRETS, action_fields, environment_fields, outcome_from_json, parse_journal



class HttpDriver(ConfiguredDriver):
    name = "http"
    KEYS = frozenset({"url", "timeout_s", "timeouts", "ca_file", "headers", "actions"})

    def __init__(self, sut: SutFile):
        super().__init__(sut)
        settings = sut.driver
        self.url = settings.get("url")
        if not isinstance(self.url, str) or not _allowed(self.url):
            raise sut.error("driver.url", f"{self.url!r} must be an https:// URL, or http:// to a loopback address "
                                          "(the requests carry passwords, SEC-01)")
        self.url = self.url.rstrip("/")
        self.actions = settings.get("actions", list(ACTIONS))
        if not isinstance(self.actions, list) or not set(self.actions) <= set(ACTIONS):
            raise sut.error("driver.actions", f"must be a list of actions among {', '.join(ACTIONS)}")
        self.timeout, self.timeouts = sut.timeouts(DEFAULT_TIMEOUT_S)
        self.headers = {k: str(v) for k, v in sut.driver_table("headers").items()}
        ca_file = settings.get("ca_file")
        context = ssl.create_default_context(cafile=str(sut.resolve(ca_file)) if ca_file else None)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                   urllib.request.HTTPSHandler(context=context))

    def start(self, env: Environment) -> None:
        self.begin(env)
        if "configure" in self.actions:
            self._post("configure", {"action": "configure"})

    def perform(self, action: Action) -> Outcome:
        if self._env is None:
            raise DriverError("the http driver was asked to act before start()")
        fields = action_fields(action)
        if fields["action"] not in self.actions:
            raise DriverError(f"{self.sut.path}: the automation endpoint offers no {fields['action']!r} "
                              "([driver] actions)")
        document = action.document.decode("utf-8") if action.document is not None else None
        body = self._post(fields["action"], {**fields, "document": document})
        return outcome_from_json(body, action, f"http driver, action {fields['action']!r}")

    def journal(self) -> list[dict]:
        if self._env is None:
            return []
        return parse_journal(self._post("journal", {"action": "journal"}).decode("utf-8", "replace"),
                             "http driver, journal")

    def _post(self, name: str, request: dict) -> bytes:
        """POST ``{url}/{name}`` with the request and the environment; the reply body on 2xx."""
        self._count += 1
        evidence = self._env.work_dir / "driver" / f"{self._count:02d}-{name}"
        evidence.parent.mkdir(parents=True, exist_ok=True)
        payload = {**request, "environment": environment_fields(self._env, secrets=True)}
        masked = {**payload, "environment": {**payload["environment"], **dict.fromkeys(SECRETS, "***")}}
        Path(f"{evidence}.request.json").write_text(json.dumps(masked, ensure_ascii=False, indent=1), encoding="utf-8")
        req = urllib.request.Request(f"{self.url}/{name}", data=json.dumps(payload).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json", **self.headers})
        timeout = self.timeouts.get(name, self.timeout)
        where = f"http driver, action {name!r} (POST {self.url}/{name})"
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            Path(f"{evidence}.response").write_bytes(body)
            raise DriverError(f"{where}: HTTP {exc.code} {exc.reason}: {body[:200].decode('utf-8', 'replace')!r}") from None
        except TimeoutError:
            raise DriverError(f"{where}: no response within {timeout:g} s (timeout)") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = "timeout" if isinstance(reason, TimeoutError) else "cannot reach the automation endpoint"
            raise DriverError(f"{where}: {kind}: {reason}") from None
        Path(f"{evidence}.response").write_bytes(body)
        return body


def _allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False

