"""The data a vendor's driver glue exchanges with the harness: requests in, ``Outcome`` JSON out.

The command and HTTP drivers speak the same JSON (docs/drivers.md, ``outcome.schema.json``), so a
vendor can move from one to the other without rewriting the mapping from their product's screen to
the Outcome model. Anything that is not exactly that model is refused here with a message saying
what was wrong, because a case must never draw a verdict from half-understood output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields

from .base import Action, DriverError, Environment, Outcome, ReportedError, ShownNotification

ACTIONS = ("configure", "lodge", "amend", "cancel", "query", "pay-create", "pay-approve", "request-otp",
           "resume",   # resume: after a restart, finish unfinished send operations (REL-09)
           "kill")     # http driver only: kill the product abruptly and start it again over its state (REL-09)
STATES = ("accepted", "cleared", "rejected", "business-error", "refused", "unknown", "not-recorded",
          "security-error", "transport-error", "local-error", "in-progress")
NOTIFICATION_KINDS = ("customs-result", "customs-error", "warning", "transport-error", "security-error",
                      "local-error", "info")
SECRETS = {"password": "ECDI_PASSWORD", "p12_password": "ECDI_P12_PASSWORD"}   # SEC-01: env, not argv
_OPTIONAL_TEXT = ("message_id", "status_function", "reception_number", "declaration_number", "channel", "raised",
                  "payment_order_id", "otp_expires_at")


def environment_fields(env: Environment, *, secrets: bool) -> dict[str, str]:
    """The environment as strings keyed like the placeholders; passwords only when ``secrets``."""
    out = {}
    for f in fields(env):
        if f.name in SECRETS and not secrets or f.name == "accounts":   # accounts: acting_user_fields
            continue
        value = getattr(env, f.name)
        out[_ALIASES.get(f.name, f.name)] = str(value)
    out.update(central_office(env.profile_id))
    return out


def central_office(profile_id: str) -> dict[str, str]:
    """ENV-06: ``central_office`` and ``central_office_name``, the To/identity and To/name of payment orders
    (701/702), from the profile's deployment data and office list."""
    from ..profile import load_profile

    profile = load_profile(profile_id)
    office = profile.deployment["central_office"]
    return {"central_office": office, "central_office_name": profile.offices.get(office, office)}


def action_request(env: Environment, action: Action) -> tuple[dict, dict]:
    """The JSON request of the HTTP driver and of the command driver's server mode, for ``action``: the
    per-action members, ``document`` as XML text, and ``environment`` (passwords included: SEC-08, the acting
    user's ``user``, ``user_id`` and ``password``, and every local user's ``accounts``). Returns the request
    and the same with every password masked, for the evidence."""
    if action.kind in ("configure", "journal", "kill"):
        return with_environment(env, {"action": action.kind})
    acting = acting_user_fields(env, action.user)
    document = action.document.decode("utf-8") if action.document is not None else None
    return with_environment(env, {**action_fields(action), "user": acting["user"], "document": document}, acting)


def with_environment(env: Environment, request: dict, acting: dict | None = None) -> tuple[dict, dict]:
    """``request`` with its ``environment`` member added, and a copy with the passwords masked."""
    accounts = [{"local_user": a.local_user, "user_id": a.user_id, "password": a.password} for a in env.accounts]
    payload = {**request, "environment": {**environment_fields(env, secrets=True), **(acting or {}),
                                          "accounts": accounts}}
    masked = {**payload, "environment": {**payload["environment"], **dict.fromkeys(SECRETS, "***"),
                                         "accounts": [{**a, "password": "***"} for a in accounts]}}
    return payload, masked


def acting_user_fields(env: Environment, local_user: str | None) -> dict[str, str]:
    """SEC-08: ``user`` (local user), ``user_id`` and ``password`` of the local user acting (None: the
    first account). The password goes to a command only through ``ECDI_PASSWORD`` (SECRETS)."""
    try:
        acc = env.account(local_user)
    except KeyError as exc:
        raise DriverError(str(exc.args[0])) from None
    return {"user": acc.local_user, "user_id": acc.user_id, "password": acc.password}


_ALIASES = {"tls_ca_pem": "tls_ca", "sign_anchor_pem": "sign_anchor", "ca_trust_list_pem": "ca_trust_list",
            "profile_id": "profile"}


# The user action behind a lodge, by Table 4-2 type and function: what a vendor's glue is asked to do.
_LODGE_ACTIONS = {("929", "8"): "lodge", ("930", "8"): "lodge", ("929", "5"): "amend", ("930", "5"): "amend",
                  ("929", "1"): "cancel", ("930", "1"): "cancel", ("701", "8"): "pay-create",
                  ("702", "8"): "pay-approve", ("702", "16"): "request-otp"}


def user_action(action: Action) -> str:
    """The driver action name for ``action`` (``lodge`` of a 929/5 is the user's ``amend``)."""
    if action.kind != "lodge":
        return action.kind
    try:
        return _LODGE_ACTIONS[(action.type, action.function)]
    except KeyError:
        raise DriverError(f"no user action lodges type {action.type} function {action.function} "
                          "(Table 4-2)") from None


def action_fields(action: Action) -> dict[str, str | None]:
    """The per-action values (placeholders and request members) other than the document itself; ``function``
    is the function code the product sends (13 for a query), none for ``configure``, ``resume``, ``journal``."""
    function = {"lodge": action.function, "query": "13"}.get(action.kind)
    return {"action": user_action(action), "type": action.type, "function": function,
            "business_ref": action.business_ref, "submission": action.submission_id, "otp": action.otp,
            "user": action.user}


def outcome_from_json(text: str | bytes, action: Action, where: str) -> Outcome:
    """Parse and check one Outcome JSON object; ``where`` names the source in error messages.

    ``action`` in the JSON is the user action's name (``amend``); the Outcome a case receives
    carries ``Action.kind``, exactly as the reference driver's does."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DriverError(f"{where}: the result is not JSON ({exc}); got {_excerpt(text)}") from None
    return outcome_from_dict(data, action, where)


def outcome_from_dict(data, action: Action, where: str) -> Outcome:
    if not isinstance(data, dict):
        raise DriverError(f"{where}: the result must be a JSON object, got {_excerpt(json.dumps(data))}")
    known = {f.name for f in fields(Outcome)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DriverError(f"{where}: unknown member(s) {unknown} in the result (Outcome schema)")
    problems, name = [], user_action(action)
    if data.get("action") != name:
        problems.append(f"action is {data.get('action')!r}, expected {name!r}")
    if data.get("state") not in STATES:
        problems.append(f"state {data.get('state')!r} is not one of {', '.join(STATES)}")
    problems += [f"{k} must be a string or null" for k in _OPTIONAL_TEXT
                 if data.get(k) is not None and not isinstance(data[k], str)]
    if isinstance(data.get("otp_expires_at"), str) and not _has_offset(data["otp_expires_at"]):
        problems.append(f"otp_expires_at {data['otp_expires_at']!r} is not an ISO 8601 date-time with its UTC offset")
    errors = {k: _entries(data.get(k, []), ("code", "field", "description"), k, problems) for k in ("errors", "warnings")}
    shown = _entries(data.get("notifications", []), ("kind", "code", "text"), "notifications", problems)
    problems += [f"notifications: kind {n['kind']!r} is not one of {', '.join(NOTIFICATION_KINDS)}"
                 for n in shown if n["kind"] not in NOTIFICATION_KINDS]
    if problems:
        raise DriverError(f"{where}: the result breaks the Outcome schema: {'; '.join(problems)}")
    return Outcome(
        action=action.kind, state=data["state"], **{k: data.get(k) for k in _OPTIONAL_TEXT},
        errors=[ReportedError(**e) for e in errors["errors"]],
        warnings=[ReportedError(**e) for e in errors["warnings"]],
        notifications=[ShownNotification(**n) for n in shown],
    )


def _has_offset(text: str) -> bool:
    """An ISO 8601 date-time stating its UTC offset (PAY-08: what the user read, in local time)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).utcoffset() is not None
    except ValueError:
        return False


def _entries(value, keys: tuple[str, ...], name: str, problems: list[str]) -> list[dict]:
    """A list of objects with exactly ``keys``, each a string (``code`` may be null)."""
    if not isinstance(value, list) or not all(isinstance(v, dict) and set(v) == set(keys) for v in value):
        problems.append(f"{name} must be a list of objects with exactly {', '.join(keys)}")
        return []
    for v in value:
        bad = [k for k in keys if not (isinstance(v[k], str) or (k == "code" and v[k] is None))]
        if bad:
            problems.append(f"{name}: {', '.join(bad)} must be strings in {v!r}")
            return []
    return value


def outcome_json(outcome: Outcome) -> str:
    return json.dumps(asdict(outcome), ensure_ascii=False)


def parse_journal(text: str, where: str) -> list[dict]:
    """SEC-06 JSON Lines: one object per non-empty line; anything else is the glue's fault."""
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise DriverError(f"{where}: journal line {n} is not JSON ({exc}): {_excerpt(line)}") from None
        if not isinstance(event, dict):
            raise DriverError(f"{where}: journal line {n} is not a JSON object: {_excerpt(line)}")
        events.append(event)
    return events


def _excerpt(text, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return repr(text[:limit] + ("…" if len(text) > limit else "")) if text else "nothing"
