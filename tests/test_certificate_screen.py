"""An officer decides from the first screen: headless Chromium shows the verdict and the counts there.

The certificate is rendered from a 66-case result (the catalogue's cases, some failing); Chromium
lays it out at 1000×800 CSS pixels. A probe script appended to a copy of the page reports where the
verdict box and the counts landed and what they read; a screenshot of the page itself shows the
verdict's colour: red for NOT CONFORMANT with no green in it, green for CONFORMANT with no red. The
hashes (64 hex digits) each lie on one line.
"""

from __future__ import annotations

import json
import re

import pytest
from test_certificate import results
from test_certificate_pages import CHROMIUM, chromium

from conformance.catalogue import all_cases
from conformance.issuer import Issuer, generate_key
from conformance.report.certificate import build_claim, render

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
SCREEN = (1000, 800)
RED, GREEN = (0xAA, 0x00, 0x00), (0x00, 0x77, 0x55)   # the template's #a00 and #075
PROBE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, r.left, r.right]; };
const overall = document.querySelector('#ecdi-verdict .overall');
document.body.setAttribute('data-probe', JSON.stringify({
  verdict: box(document.getElementById('ecdi-verdict')), overall: box(overall),
  overall_text: overall.innerText,
  counts: [...document.querySelectorAll('#ecdi-counts li')].map(li => [li.innerText, box(li)]),
  hash_lines: Object.fromEntries(['profile.hash', 'evidence.head_hash', 'issuer.key_id'].map(
    n => [n, document.querySelector(`[data-claim="${n}"]`).getClientRects().length])),
}));
</script>
"""


def catalogue_results(failing: bool) -> dict:
    cases = [{"id": s.id, "family": s.family_name, "requirements": list(s.requirements), "evidence": ["wire"],
              "verdict": ("FAIL" if i % 17 == 3 else "INCONCLUSIVE" if i % 29 == 5 else "PASS") if failing else "PASS"}
             for i, s in enumerate(all_cases())]
    return results(cases=cases, overall="NOT CONFORMANT" if failing else "CONFORMANT")


def page(tmp_path, failing: bool) -> tuple[bytes, dict]:
    key = generate_key(tmp_path / "issuer.pem")
    r = catalogue_results(failing)
    claim = build_claim(r, Issuer("self-assessment", key, "test"), evidence={"head_hash": "cd" * 32, "rows": 1234},
                        interrupted=False,
                        catalogue=None, released={})
    return render(claim, Issuer("self-assessment", key, "test")), claim


def probe(tmp_path, html: bytes) -> dict:
    probed = tmp_path / "probed.html"
    probed.write_bytes(html.replace(b"</body>", PROBE.encode() + b"</body>", 1))
    dom = chromium(tmp_path, f"--window-size={SCREEN[0]},{SCREEN[1]}", "--virtual-time-budget=3000", "--dump-dom",
                   probed.as_uri()).stdout
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(tmp_path, html: bytes):
    from PIL import Image

    cert, shot = tmp_path / "certificate.html", tmp_path / "shot.png"
    cert.write_bytes(html)
    chromium(tmp_path, f"--window-size={SCREEN[0]},{SCREEN[1]}", "--hide-scrollbars", f"--screenshot={shot}",
             cert.as_uri())
    return Image.open(shot).convert("RGB")


def pixels_near(image, box, colour, tolerance=40) -> int:
    top, bottom, left, right = (round(x) for x in box)
    data = image.crop((left, top, right, bottom)).tobytes()
    return sum(1 for i in range(0, len(data), 3) if all(abs(data[i + k] - colour[k]) <= tolerance for k in range(3)))


@pytest.mark.parametrize("failing", [True, False], ids=["not-conformant", "conformant"])
def test_verdict_and_counts_on_the_first_screen(tmp_path, failing):
    html, claim = page(tmp_path, failing)
    seen = probe(tmp_path, html)
    assert seen["verdict"][1] <= SCREEN[1], f"the verdict box ends at {seen['verdict'][1]} px, below the first screen"
    assert seen["overall_text"].startswith("KHÔNG PHÙ HỢP" if failing else "PHÙ HỢP")
    assert claim["overall"] in seen["overall_text"]
    shown = {}
    for text, box in seen["counts"]:
        m = re.fullmatch(r".+ / (\S+) (\d+)", " ".join(text.split()))
        assert m, text
        shown[m.group(1)] = int(m.group(2))
        assert box[1] <= SCREEN[1], f"{text} is below the first screen"
    assert shown == claim["counts"]
    assert seen["hash_lines"] == {"profile.hash": 1, "evidence.head_hash": 1, "issuer.key_id": 1}, "a hash wraps"
    image = screenshot(tmp_path, html)
    red, green = pixels_near(image, seen["overall"], RED), pixels_near(image, seen["overall"], GREEN)
    if failing:
        assert red > 200 and green == 0, (red, green)
    else:
        assert green > 200 and red == 0, (red, green)
