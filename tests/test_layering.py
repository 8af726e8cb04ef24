"""The seams of docs/architecture.md, enforced: who may import whom."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports_of(folder: Path) -> dict[str, set[str]]:
    found = {}
    for path in folder.rglob("*.py"):
        mods = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # resolve relative imports against the file's package
                    pkg = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                    base = ".".join(pkg + ((base,) if base else ()))
                mods.add(base)
                mods.update(f"{base}.{a.name}" for a in node.names)
        found[str(path.relative_to(ROOT))] = mods
    return found


RULES = [
    ("mock_server", ["conformance.cases", "conformance.drivers", "conformance.reference_dts", "conformance.plugin",
                     "conformance.harness", "conformance.context", "conformance.gateway_control"]),
    ("conformance/reference_dts", ["mock_server", "conformance.drivers", "conformance.cases", "conformance.plugin",
                                   "conformance.harness", "conformance.gateway_control"]),
    ("conformance/cases", ["mock_server", "conformance.reference_dts", "conformance.harness", "conformance.pki"]),
]


@pytest.mark.parametrize("folder,forbidden", RULES, ids=[r[0] for r in RULES])
def test_forbidden_imports(folder, forbidden):
    offences = [
        f"{path} imports {mod}"
        for path, mods in imports_of(ROOT / folder).items()
        for mod in mods
        if any(mod == f or mod.startswith(f + ".") for f in forbidden)
    ]
    assert not offences, "\n".join(offences)


def test_the_harness_playing_the_dts_reuses_only_the_evidence_format_of_the_mock_gateway():
    """Issue 16: the gateway under test may be any CGW; the client shares the evidence file format (and its
    redaction), never the mock gateway's pipeline, and drives no DTS."""
    allowed = {"mock_server.evidence", "mock_server.redaction"}
    offences = [f"{path} imports {mod}" for path, mods in imports_of(ROOT / "conformance/playing_dts").items()
                for mod in mods
                if (mod.startswith("mock_server") and not any(mod == a or mod.startswith(a + ".") for a in allowed))
                or mod.startswith(("conformance.drivers", "conformance.plugin"))]
    assert not offences, "\n".join(offences)
