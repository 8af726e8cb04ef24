"""The gateway's outbox: the OTP e-mails it "sends" (PAY-04).

Nothing leaves the machine. The harness reads the outbox through the control API
(``GET /_control/mailbox``) to type the OTP into a DTS, and an operator running a GUI product by
hand reads it on the live page — exactly where a real user would read the e-mail.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Mail:
    seq: int
    sent_at: str                 # gateway clock, DateTime
    sender: str                  # otp_sender
    to: tuple[str, ...]
    subject: str
    body: str
    tax_code: str
    payment_order_id: str
    otp: str
    expires_at: str

    def to_json(self) -> dict:
        data = asdict(self)
        data["to"] = list(self.to)
        return data


class Mailbox:
    def __init__(self) -> None:
        self._mails: list[Mail] = []
        self._lock = threading.Lock()

    def send(self, **fields) -> Mail:
        with self._lock:
            mail = Mail(seq=len(self._mails) + 1, **fields)
            self._mails.append(mail)
            return mail

    def messages(self, *, tax_code: str | None = None, payment_order_id: str | None = None) -> list[Mail]:
        with self._lock:
            return [m for m in self._mails
                    if (tax_code is None or m.tax_code == tax_code)
                    and (payment_order_id is None or m.payment_order_id == payment_order_id)]
