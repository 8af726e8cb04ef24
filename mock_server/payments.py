"""Payment orders and their OTPs (PAY-03..07), kept in the gateway's state database.

An order is "awaiting approval" until a 702/8 approves it. Each order has at most one current OTP:
issuing a new one invalidates the previous (PAY-04); ``N_otp_attempts`` wrong values invalidate it
(PAY-06); approval consumes it. Only a hash of the OTP is stored with the order — the value exists
in the e-mail alone (PAY-04: never in a reply).

Expiry is ``issue time + T_otp`` on the gateway clock, with ``T_otp`` of the profile of the message
that caused the issue (§2), scaled per §2.1. Times are stored as epoch seconds of that clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from .database import Database

@dataclass(frozen=True)
class Order:
    order_id: str
    message_id: str
    from_identity: str
    maker: str
    total_vnd: str
    state: str
    otp_hash: str | None
    otp_expires_at: float | None
    otp_wrong: int
    otp_valid: bool


@dataclass(frozen=True)
class IssuedOtp:
    value: str
    expires_at: float


def otp_hash(order_id: str, value: str) -> str:
    return hashlib.sha256(f"{order_id}:{value}".encode("ascii")).hexdigest()


def format_precise(epoch: float) -> str:
    """DateTime (§4.2) with milliseconds and +07:00: scaled T_otp values are fractions of seconds."""
    from conformance.codec.envelope import VN_TZ

    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(VN_TZ).isoformat(timespec="milliseconds")


class Payments:
    """Orders in the store's database; every change runs in the store's transactions (``tx``)."""

    def __init__(self, db: Database, tx):
        self._db, self._tx = db, tx       # the table is in the state schema (migrations/state)

    def order(self, order_id: str) -> Order | None:
        row = self._db.execute("SELECT * FROM payment_orders WHERE order_id = ?", (order_id,)).fetchone()
        return Order(*row[:-1], bool(row[-1])) if row else None

    def create(self, *, message_id: str, from_identity: str, maker: str, total_vnd: str, next_number: int) -> str:
        """Allocate ``PO`` + 14 digits and record the order awaiting approval (PAY-03)."""
        order_id = f"PO{next_number:014d}"
        with self._tx() as db:
            db.execute("INSERT INTO payment_orders (order_id, message_id, from_identity, maker, total_vnd, state)"
                       " VALUES (?, ?, ?, ?, ?, 'awaiting')", (order_id, message_id, from_identity, maker, total_vnd))
        return order_id

    def issue_otp(self, order_id: str, now: float, validity_s: float) -> IssuedOtp:
        """A fresh 6-digit OTP from a CSPRNG, replacing the current one (PAY-04, PAY-05)."""
        value = f"{secrets.randbelow(1_000_000):06d}"
        expires = now + validity_s
        with self._tx() as db:
            db.execute("UPDATE payment_orders SET otp_hash = ?, otp_expires_at = ?, otp_wrong = 0, otp_valid = 1"
                       " WHERE order_id = ?", (otp_hash(order_id, value), expires, order_id))
        return IssuedOtp(value, expires)

    def expire_otp(self, order_id: str, now: float) -> bool:
        """Scenario ``expire_otp``: the current OTP's validity ends now. False if there is none."""
        with self._tx() as db:
            changed = db.execute("UPDATE payment_orders SET otp_expires_at = ? WHERE order_id = ? AND otp_valid = 1",
                                 (now, order_id)).rowcount
        return bool(changed)

    def check_otp(self, order: Order, value: str, now: float, max_wrong: int) -> str | None:
        """PAY-06 after the maker check: None if ``value`` is current and right, else P0001 / P0002.
        The ``max_wrong``-th wrong value invalidates the OTP."""
        if not order.otp_valid or order.otp_expires_at is None or now >= order.otp_expires_at:
            return "P0001"
        if otp_hash(order.order_id, value) == order.otp_hash:
            return None
        with self._tx() as db:
            db.execute("UPDATE payment_orders SET otp_wrong = otp_wrong + 1,"
                       " otp_valid = CASE WHEN otp_wrong + 1 >= ? THEN 0 ELSE otp_valid END WHERE order_id = ?",
                       (max_wrong, order.order_id))
        return "P0002"

    def approve(self, order_id: str) -> None:
        """The order is approved and its OTP consumed (single use)."""
        with self._tx() as db:
            db.execute("UPDATE payment_orders SET state = 'approved', otp_valid = 0 WHERE order_id = ?", (order_id,))
