"""Time the gateway's CPU path (read, structure, explanation: Table 7-3 steps 4, 7 and 13) on hostile
message texts (issue 13): many attributes, deep nesting, a huge name, many invalid values.

Target: each answered in under 2 s on the 2-core machine, and 50,000 attributes in less than 25 × the
time of 2,000, their size ratio (no super-linear growth; before the fix 2,000 took 23.6 s in the
gateway and 50,000 never finished).
"""

from __future__ import annotations

import copy
import sys
import time

from lxml import etree

from conformance.codec import envelope, lexical, safexml
from conformance.codec.namespaces import DEC, q
from conformance.profile import FIXTURES, load_profile

TARGET_S = 2.0


def signed_like_request() -> bytes:
    decl = etree.parse(str(FIXTURES / "samples" / "declaration-import.xml"), safexml.hardened_parser()).getroot()
    header = envelope.Header({
        "procedureType": "1", "Reference/version": "1.0", "Reference/messageId": envelope.new_message_id(),
        "SendApplication/name": "bench", "SendApplication/version": "1", "SendApplication/companyName": "Bench",
        "SendApplication/companyIdentity": "0100000009", "SendApplication/createMessageIssue": "2025-03-02T10:00:00+07:00",
        "From/name": "F", "From/identity": "0312345678", "To/name": "Chi cục", "To/identity": "03TG",
        "Subject/type": "929", "Subject/function": "8", "Subject/reference": "BENCH-1",
        "Subject/sendApplication": "6a1c0b7e-2d3f-4c5b-8e9a-0f1e2d3c4b5a", "Subject/receiveApplication": "CGW",
    })
    return etree.tostring(envelope.build_envelope(header, decl), encoding="utf-8")


def hostile_texts(base: bytes, s_max: int) -> dict[str, bytes]:
    def attributes(n: int) -> bytes:
        return base.replace(b"<procedureType>", b"<procedureType " + b" ".join(b'a%d="x"' % i for i in range(n)) + b">", 1)

    decl = etree.fromstring(base).find(f".//{q(DEC, 'Declaration')}")
    item = etree.tostring(decl.find(q(DEC, "GoodsItem"))).replace(b"84713020", b"bad")
    many_items = base.replace(b"</Declaration>", item * (s_max // len(item) - 10) + b"</Declaration>", 1)
    deepest = (s_max - len(base)) // 7 - 10
    return {
        "2,000 attributes": attributes(2_000),
        "4,000 attributes": attributes(4_000),
        "50,000 attributes": attributes(50_000),
        "10,000-deep nesting": base.replace(b"<Trader>", b"<Trader>" + b"<x>" * 10_000 + b"</x>" * 10_000, 1),
        f"{deepest:,}-deep nesting (S_max)": base.replace(b"<Trader>", b"<Trader>" + b"<x>" * deepest + b"</x>" * deepest, 1),
        "1 MiB element name": base.replace(b"<Trader>", b"<Trader><" + b"N" * 2**20 + b"/>", 1),
        "invalid values up to S_max": many_items,
    }


def answer_time(text: bytes, profile) -> tuple[float, str]:
    start = time.perf_counter()
    root, beyond = safexml.read_message_text(text, max_bytes=profile.params["S_max"])
    issues = profile.validate_envelope(root, "request") or profile.validate_content(root)
    lexical.lexical_problem(root, profile.repeatable)
    return time.perf_counter() - start, envelope.fit_field(issues[0].path) if issues else "(none)"


def main() -> int:
    profile = load_profile("ecdi-1.0")
    base = signed_like_request()
    answer_time(base.replace(b"84713020", b"bad"), profile)          # load xmlschema once, as a running gateway has
    failed = False
    times = {}
    for name, text in hostile_texts(base, profile.params["S_max"]).items():
        seconds, field = answer_time(text, profile)
        times[name] = seconds
        ok = seconds < TARGET_S
        failed |= not ok
        print(f"{name:38s} {len(text):>9,} octets  {seconds:6.2f} s  {'ok' if ok else 'SLOW'}  -> {field[:60]}")
    ratio = times["50,000 attributes"] / max(times["2,000 attributes"], 1e-3)
    print(f"50,000 / 2,000 attributes time ratio {ratio:.1f} (target < 25, the size ratio)")
    failed |= ratio >= 25
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
