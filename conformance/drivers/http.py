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
import threading
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..remote import RemoteFailure, call
from ..sut import SutFile
from .base import Action, DriverError, DriverInconclusive, Environment, Outcome, await_kill_moment
from .configured import ConfiguredDriver
from .command import DEFAULT_TIMEOUT_S
from .protocol import ACTIONS, action_fields, action_request, outcome_from_json, parse_journal


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
        self._session = requests.Session()
        self._session.trust_env = False        # no proxy, and no REQUESTS_CA_BUNDLE replacing ca_file
        self._session.verify = str(sut.resolve(ca_file)) if ca_file else True

    def start(self, env: Environment) -> None:
        self.begin(env)
        if "configure" in self.actions:
            self._post("configure", *action_request(self._env, Action(kind="configure")))

    def perform(self, action: Action) -> Outcome:
        if self._env is None:
            raise DriverError("the http driver was asked to act before start()")
        fields = action_fields(action)
        if fields["action"] not in self.actions:
            raise DriverError(f"{self.sut.path}: the automation endpoint offers no {fields['action']!r} "
                              "([driver] actions)")
        body = self._post(fields["action"], *action_request(self._env, action))
        return outcome_from_json(body, action, f"http driver, action {fields['action']!r}")

    def perform_and_kill(self, action: Action, when, *, timeout: float) -> None:
        """REL-09: POST the action and, once ``when()`` holds, POST ``kill``: the endpoint kills the product
        abruptly (no clean-up) and starts it again over its state. The killed action's answer is ignored:
        what counts is what reaches the gateway afterwards. Without ``kill`` among the endpoint's actions
        nothing can be concluded (INCONCLUSIVE)."""
        if "kill" not in self.actions:
            raise DriverInconclusive(f"{self.sut.path}: the automation endpoint offers no 'kill' action; REL-09 "
                                     "needs the product killed mid-action and started again")
        worker = threading.Thread(target=self._perform_ignoring_answer, args=(action,), daemon=True,
                                  name="http-driver-killed-action")
        worker.start()
        await_kill_moment(worker.is_alive, when, timeout=timeout, what=action.kind)
        self._post("kill", *action_request(self._env, Action(kind="kill")))

    def _perform_ignoring_answer(self, action: Action) -> None:
        try:
            self.perform(action)
        except DriverError:
            pass          # the product was killed while answering: expected

    def offers(self, action_name: str) -> bool:
        """Whether ``sut.toml`` gives the product a way to perform the user action ``action_name``."""
        return action_name in self.actions

    def journal(self) -> list[dict]:
        if self._env is None:
            return []
        return parse_journal(self._post("journal", *action_request(self._env, Action(kind="journal")))
                             .decode("utf-8", "replace"),
                             "http driver, journal")

    def _post(self, name: str, payload: dict, masked: dict) -> bytes:
        """POST ``{url}/{name}`` with the request (``protocol.action_request``: the environment, passwords
        included); ``masked`` goes to the evidence. Returns the reply body on 2xx; any other answer or
        failure is a DriverError naming the action, the URL and the cause (``remote.call``)."""
        self._count += 1
        evidence = self._env.work_dir / "driver" / f"{self._count:02d}-{name}"
        evidence.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{evidence}.request.json").write_text(json.dumps(masked, ensure_ascii=False, indent=1), encoding="utf-8")
        url = f"{self.url}/{name}"
        try:
            answer = call(self._session, "POST", url, where=f"http driver, action {name!r} (POST {url})",
                          timeout=self.timeouts.get(name, self.timeout), peer="the automation endpoint",
                          data=json.dumps(payload).encode("utf-8"),
                          headers={"Content-Type": "application/json", **self.headers})
        except RemoteFailure as failure:
            Path(f"{evidence}.response").write_bytes(failure.body)
            raise DriverError(str(failure)) from None
        Path(f"{evidence}.response").write_bytes(answer.body)
        return answer.body


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

