"""The profile ecdi-1.0: its data says what the spec says, and its schemas refuse what the spec refuses."""

from __future__ import annotations

import copy
import os
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
from lxml import etree

from conformance.codec.envelope import ErrorEntry, Header, Result, build_envelope
from conformance.codec.namespaces import DEC, DS, ENV, PAY, q
from conformance.profile import FIXTURES, Profile, ProfileError, list_profiles, load_profile

SAMPLES = FIXTURES / "samples"
PROFILE_DIR = FIXTURES / "profiles" / "ecdi-1.0"
# CI clones the repo with shared/ beside it, as on a developer machine.
SPEC = Path(os.environ.get("ECDI_SPEC", Path(__file__).resolve().parents[2] / "shared" / "spec" / "ECDI.md"))
XSI = "http://www.w3.org/2001/XMLSchema-instance"
GOODS = "/Envelope/Body/Content/Declaration/GoodsItem"

ANNEX_C_FAMILIES = {"TRN": 14, "ENV": 10, "DOC": 4, "RPL": 15, "SIG": 15, "REL": 15, "PAY": 11, "TXT": 6,
                    "SEC": 9, "CAP": 8}
ONLY_IN_1_1 = {"SIG-07"}


@pytest.fixture(scope="module")
def profile():
    return load_profile("ecdi-1.0")


def sample(name: str) -> etree._Element:
    return etree.parse(str(SAMPLES / f"{name}.xml")).getroot()


def request_header(**fields) -> Header:
    """A valid 929/8 request header of profile 1.0 (Annex B without certificationId); ``fields`` override."""
    base = {
        "procedureType": "1", "Reference/version": "1.0", "Reference/messageId": "3f2b8c1e-7a4d-4e2f-9b1a-5c6d7e8f9a0b",
        "SendApplication/name": "ViDu-Customs", "SendApplication/version": "3.2.1",
        "SendApplication/companyName": "Công ty Cổ phần Phần mềm Ví Dụ", "SendApplication/companyIdentity": "0109876543",
        "SendApplication/createMessageIssue": "2025-03-14T09:15:02+07:00",
        "From/name": "Công ty TNHH Thương mại Hải Đăng", "From/identity": "0312345678",
        "To/name": "Chi cục Hải quan cửa khẩu cảng Sài Gòn khu vực I", "To/identity": "03TG",
        "Subject/type": "929", "Subject/function": "8", "Subject/reference": "HD-2025/0315",
        "Subject/sendApplication": "6a1c0b7e-2d3f-4c5b-8e9a-0f1e2d3c4b5a", "Subject/receiveApplication": "CGW",
    }
    return Header({**base, **fields})


def reply_header(**fields) -> Header:
    """A 271 reply header with the placeholders of Table 4-3."""
    base = {
        "procedureType": "0", "Reference/version": "1.0", "Reference/messageId": "b7e4d2a0-1c3f-4a5b-9d8e-7f6a5b4c3d2e",
        "SendApplication/name": "ECDI-CGW", "SendApplication/version": "1.0.0",
        "SendApplication/companyName": "Cổng thông tin hải quan (thử nghiệm)", "SendApplication/companyIdentity": "0100000000",
        "SendApplication/createMessageIssue": "2025-03-14T09:15:04+07:00",
        "From/name": "-", "From/identity": "00HQ", "To/name": "-", "To/identity": "0000000000",
        "Subject/type": "000", "Subject/function": "271", "Subject/reference": "",
        "Subject/sendApplication": "CGW", "Subject/receiveApplication": "-",
    }
    return Header({**base, **fields})


def envelope(content: etree._Element | None = None, **fields) -> etree._Element:
    return build_envelope(request_header(**fields), content if content is not None else sample("declaration-import"))


def paths(issues) -> list[str]:
    return [i.path for i in issues]


def vietnamese_text(length: int) -> str:
    """NFC Vietnamese of exactly ``length`` code points, not ending in white space."""
    text = ("Bộ sạc cho máy tính xách tay, hàng mới 100%, xuất xứ Việt Nam; " * 10)[: length - 1] + "ệ"
    assert unicodedata.is_normalized("NFC", text) and len(text) == length
    return text


# --- loading -------------------------------------------------------------------------------------
def test_profile_is_listed_loaded_once_and_identified(profile):
    assert "ecdi-1.0" in list_profiles()
    assert load_profile("ecdi-1.0") is profile
    assert (profile.id, profile.version, profile.directory) == ("ecdi-1.0", "1.0", PROFILE_DIR)


def test_unknown_profile_is_a_profile_error_naming_what_exists():
    with pytest.raises(ProfileError, match="no such profile.*ecdi-1.0"):
        load_profile("ecdi-9.9")


def test_parameters_are_those_of_column_1_0(profile):
    assert profile.params == {
        "T_send": 60, "T_cgw": 25, "N_retry": 5, "T_backoff_base": 2, "T_backoff_max": 60, "T_poll_min": 4,
        "T_poll_max_total": 1800, "T_skew": 300, "T_age_max": 86400, "T_idem": 2592000, "T_otp": 120,
        "N_otp_attempts": 5, "S_max": 5242880, "N_goods_max": 50, "N_taxlines_max": 50,
        "SHA1": "accept-with-warning", "MC_required": "optional", "certification_id": "absent",
    }


def test_deployment_of_the_test_environment(profile):
    d = profile.deployment
    assert (d["central_office"], d["accepted_versions"], d["cgw_path"]) == ("00HQ", ["1.0"], "/ecdi/CISService")
    assert re.fullmatch(r"[^@\s]+@[^@\s]+", d["otp_sender"])
    assert d["central_office"] in profile.offices


def test_offices_are_realistic_vietnamese_names_in_nfc(profile):
    assert len(profile.offices) >= 6
    assert profile.offices["03TG"] == "Chi cục Hải quan cửa khẩu cảng Sài Gòn khu vực I"
    for code, name in profile.offices.items():
        assert re.fullmatch(r"[0-9]{2}[0-9A-Z]{2}", code) and unicodedata.is_normalized("NFC", name)


# --- requirement index (Annex C) -----------------------------------------------------------------
def test_every_annex_c_requirement_of_1_0_is_indexed(profile):
    expected = {f"{fam}-{n:02d}" for fam, count in ANNEX_C_FAMILIES.items() for n in range(1, count + 1)}
    assert set(profile.requirements) == expected - ONLY_IN_1_1


def annex_c() -> dict[str, tuple[frozenset[str], str, str]]:
    text = SPEC.read_text(encoding="utf-8").split("## Annex C", 1)[1].split("## Annex D", 1)[0]
    rows = re.findall(r"^\| ([A-Z]{3}-\d\d) \| ([^|]+) \| (.+) \| ([^|]+) \|$", text, re.M)
    return {rid: (frozenset(b.strip() for b in binds.split(",")), summary, since) for rid, binds, summary, since in rows}


@pytest.mark.skipif(not SPEC.is_file(), reason=f"spec not found at {SPEC} (set ECDI_SPEC)")
def test_binds_and_summaries_are_those_of_annex_c(profile):
    spec = annex_c()
    assert set(spec) - ONLY_IN_1_1 == set(profile.requirements)
    for rid, req in profile.requirements.items():
        binds, summary, since = spec[rid]
        assert (req.binds, req.summary) == (binds, summary.replace("\\|", "|")), rid
        assert req.since == "1.0" and (since == "1.0" or req.note), rid  # other Since texts are kept as notes


def test_level_is_the_strongest_keyword_binding_the_dts(profile):
    reqs = profile.requirements
    for req in reqs.values():
        assert (req.level == "") == (req.binds == {"CGW"}), req.id
    assert reqs["TRN-14"].level == "MUST"                               # MUST one Send; SHOULD ≤ 4 concurrent
    assert (reqs["TRN-13"].binds, reqs["TRN-13"].level) == ({"CGW"}, "")  # DTS part withdrawn
    assert reqs["PAY-11"].level == "SHOULD"                             # MUST only from 1.1
    assert {r.id for r in reqs.values() if r.level == "SHOULD"} == {"PAY-11"}
    assert not any(r.level == "MAY" for r in reqs.values())


def test_cgw_level_is_the_strongest_keyword_binding_the_cgw(profile):
    """Issue 16: every requirement binding the CGW has its CGW level (all MUST, see requirements.toml)."""
    for req in profile.requirements.values():
        assert (req.cgw_level == "") == ("CGW" not in req.binds), req.id
        assert req.level_for("CGW") == req.cgw_level and req.level_for("DTS") == req.level
    assert profile.requirements["TRN-13"].cgw_level == "MUST" and profile.requirements["TRN-14"].cgw_level == ""


def test_capabilities_restrict_payment_and_ecdsa_requirements_only(profile):
    by_capability = {(r.id, r.capability) for r in profile.requirements.values() if r.capability}
    assert by_capability == {(f"PAY-{n:02d}", "payment") for n in range(1, 12)} | {("SIG-03", "ecdsa")}
    assert set(profile.capabilities) == {"import", "export", "amend", "cancel", "payment", "ecdsa"}
    assert profile.capabilities["amend"].requires_any == ("import", "export")


def test_requirements_binding_a_party(profile):
    dts = profile.requirements_binding("DTS")
    assert dts[0].id == "TRN-01" and all("DTS" in r.binds for r in dts)
    assert {r.id for r in dts} | {r.id for r in profile.requirements_binding("CGW")} == set(profile.requirements)
    with pytest.raises(ValueError):
        profile.requirements_binding("bank")


# --- timers and PIXIT ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,scaled", [("T_send", 6.0), ("T_cgw", 2.5), ("T_backoff_base", 0.2),
                                         ("T_backoff_max", 6.0), ("T_poll_min", 0.4), ("T_poll_max_total", 180.0),
                                         ("T_otp", 12.0), ("T_skew", 30.0), ("T_age_max", 86400.0),
                                         ("T_idem", 2592000.0)])
def test_time_scale_multiplies_only_the_timers_of_section_2_1(profile, name, scaled):
    assert profile.timer(name, 0.1) == pytest.approx(scaled)
    assert profile.timer(name) == profile.params[name]


@pytest.mark.parametrize("name", ["N_retry", "S_max", "T_unknown"])
def test_a_name_that_is_not_a_timer_is_refused_clearly(profile, name):
    with pytest.raises(ValueError, match=f"'{name}' is not a timer of profile ecdi-1.0"):
        profile.timer(name)


def test_time_scale_outside_0_1_is_refused(profile):
    for scale in (0, 1.5):
        with pytest.raises(ValueError, match="0 < s <= 1"):
            profile.timer("T_send", scale)


SPEC_STATEMENT_PIXIT = {  # Table 13-2's example
    "t_send_s": 60, "n_retry": 5, "backoff_base_s": 2, "backoff_max_s": 60, "poll_interval_s": 5,
    "poll_max_total_s": 1800, "endpoint_setting": "Cài đặt > Kết nối > Địa chỉ cổng (file ecdi.ini, key endpoint)",
    "tls_trust_store": "C:/ProgramData/ViDu/ecdi/tls-anchors.pem; append the test CA in PEM",
    "reply_sign_anchor": "C:/ProgramData/ViDu/ecdi/cgw-sign-anchor.pem",
    "ca_trust_list": "C:/ProgramData/ViDu/ecdi/ca-trust/ (one PEM per CA)", "signing_key_source": ["pkcs11", "os-store"],
    "journal_export": '"C:/Program Files/ViDu/vidu-cli.exe" journal export --all',
    "stimulus": "vidu-cli.exe run <action.toml>", "time_scale_supported": True,
}


def test_the_spec_example_statement_pixit_is_accepted(profile):
    assert profile.check_statement_pixit(SPEC_STATEMENT_PIXIT) == []
    optional_left_out = {k: v for k, v in SPEC_STATEMENT_PIXIT.items() if k not in ("stimulus", "time_scale_supported")}
    assert profile.check_statement_pixit(optional_left_out) == []


@pytest.mark.parametrize("change,message", [
    ({"t_send_s": 29}, "pixit.t_send_s = 29 is outside 30 … T_send = 60"),
    ({"t_send_s": 61}, "pixit.t_send_s = 61 is outside 30 … T_send = 60"),
    ({"t_send_s": 45.0}, "pixit.t_send_s must be a TOML integer"),
    ({"n_retry": True}, "pixit.n_retry must be a TOML integer"),
    ({"n_retry": 6}, "pixit.n_retry = 6 is outside 0 … N_retry = 5"),
    ({"backoff_base_s": 1}, "pixit.backoff_base_s = 1 is outside T_backoff_base = 2"),
    ({"backoff_base_s": 40, "backoff_max_s": 30}, "pixit.backoff_max_s = 30 is outside T_backoff_max = 60"),
    ({"backoff_base_s": 70}, "pixit.backoff_base_s = 70 is outside T_backoff_base = 2 … pixit.backoff_max_s = 60"),
    ({"poll_interval_s": 3}, "pixit.poll_interval_s = 3 is outside T_poll_min = 4 … 60"),
    ({"poll_max_total_s": 1801}, "pixit.poll_max_total_s = 1801 is outside 300 … T_poll_max_total = 1800"),
    ({"signing_key_source": ["pkcs12", "smartcard"]}, "pixit.signing_key_source holds ['smartcard']"),
    ({"signing_key_source": []}, "pixit.signing_key_source must hold at least 1 value"),
    ({"endpoint_setting": " "}, "pixit.endpoint_setting must not be empty"),
    ({"time_scale_supported": "yes"}, "pixit.time_scale_supported must be a TOML boolean"),
    ({"proxy": "none"}, "pixit.proxy: unknown key"),
    ({"journal_export": None}, "pixit.journal_export: missing"),
])
def test_statement_pixit_outside_table_13_2_is_reported(profile, change, message):
    pixit = {k: v for k, v in {**SPEC_STATEMENT_PIXIT, **change}.items() if v is not None}
    problems = profile.check_statement_pixit(pixit)
    assert any(p.startswith(message) for p in problems), problems


def test_pixit_bounds_scale_timings_not_counts(profile):
    bounds = profile.pixit_bounds(SPEC_STATEMENT_PIXIT, time_scale=0.1)
    assert bounds["t_send_s"] == pytest.approx((3.0, 6.0))          # the fixed 30 is scaled too
    assert bounds["backoff_max_s"] == pytest.approx((6.0, 30.0))
    assert bounds["backoff_base_s"] == pytest.approx((0.2, 6.0))    # ceiling: the statement's backoff_max_s
    assert bounds["n_retry"] == (0, 5)
    assert profile.pixit_bounds()["backoff_base_s"][1] is None      # no statement: that ceiling is unknown


# --- code lists, result codes, Tables 4-2 and 7-2 ------------------------------------------------
def xsd_enumeration(type_name: str) -> set[str]:
    tree = etree.parse(str(PROFILE_DIR / "xsd" / "types.xsd"))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    st = tree.find(f"{xs}simpleType[@name='{type_name}']")
    return {e.get("value") for e in st.iter(f"{xs}enumeration")}


@pytest.mark.parametrize("code_list,xsd_type", [
    ("message_type", "MessageType"), ("function_request", "RequestFunction"), ("function_reply", "ReplyFunction"),
    ("procedure_type", "ProcedureType"), ("channel", "Channel"), ("tax_type", "TaxType"),
    ("declaration_type", "DeclarationType"), ("transport_mode", "TransportMode"), ("cancel_reason", "CancelReason"),
])
def test_schema_enumerations_agree_with_the_code_lists(profile, code_list, xsd_type):
    assert set(profile.codes[code_list]) == xsd_enumeration(xsd_type)


def test_result_codes_of_1_0(profile):
    codes = profile.result_codes
    assert set(codes) - {"00000"} == xsd_enumeration("ErrorCode")
    assert "X0005" not in codes and "G0007" not in codes and "W0001" in codes   # 1.1-only out, 1.0-only in
    assert codes["E0002"].transient and codes["E0002"].functions == {"272"}
    assert codes["U0002"].field == "path" and codes["G0002"].field == "empty"
    assert "271" not in codes["W0002"].functions and "272" in codes["W0002"].functions
    for rc in codes.values():
        assert rc.description_vi and unicodedata.is_normalized("NFC", rc.description_vi) and len(rc.description_vi) <= 500


def test_rejection_codes_end_the_send_operation(profile):
    rejection = profile.rejection_codes()
    assert "U0001" in rejection and "X0002" in rejection
    assert not {"E9001", "E9002"} & set(rejection)                     # retryable (REL-03)
    assert all(profile.result_codes[c].functions == {"271"} for c in rejection)


def test_declaration_types_are_split_by_message_type(profile):
    assert set(profile.codes["declaration_type_import"]) == {"A11", "A31", "E31", "G11"}
    assert set(profile.codes["declaration_type_export"]) == {"B11", "B13", "E62", "G21"}


def test_permitted_requests_of_table_4_2(profile):
    pr = profile.permitted_requests
    assert len(pr) == 13                                               # type/function pairs of the 8 rows
    assert pr[("929", "8")].content == q(DEC, "Declaration") and pr[("929", "8")].capability == "import"
    assert pr[("930", "1")].content == q(DEC, "Cancellation") and pr[("930", "1")].procedure_type == "1"
    assert pr[("702", "16")].reference == "PaymentOrderId" and pr[("702", "16")].procedure_type == "2"
    assert {pr[(t, "13")].capability for t in ("929", "930", "701", "702")} == {"import", "export", "payment"}
    assert pr[("701", "13")].content == q(ENV, "Query") and pr[("701", "13")].reference == "GUID"


def test_final_replies_of_table_7_2(profile):
    flows = profile.reply_flows
    assert flows[("929", "8")].final == {"35", "272", "273"}
    assert flows[("930", "1")].final == {"32", "272", "273"}
    assert flows[("701", "8")].final == {"29", "272"} == flows[("702", "16")].final
    assert flows[("702", "8")].synchronous == ("32", "273", "272", "271")
    assert not flows[("929", "13")].submission and not flows[("929", "13")].final


def test_repeatable_names_are_read_from_the_schemas(profile):
    assert profile.repeatable == {"GoodsItem", "TaxLine", "Tax", "Error"}


def test_schema_limits_are_the_profile_parameters(profile):
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for file, name, param in (("declaration.xsd", "GoodsItem", "N_goods_max"), ("payment.xsd", "TaxLine", "N_taxlines_max")):
        decl = etree.parse(str(PROFILE_DIR / "xsd" / file)).find(f".//{xs}element[@name='{name}']")
        assert int(decl.get("maxOccurs")) == profile.params[param]


# --- samples -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["declaration-import", "declaration-export", "payment-order"])
def test_samples_validate_alone_and_inside_an_envelope(profile, name):
    content = sample(name)
    assert profile.validate_content(content) == []
    env = envelope(content, **({"procedureType": "2", "Subject/type": "701", "To/identity": "00HQ"}
                               if name == "payment-order" else {}))
    assert profile.validate_envelope(env, "request") == []
    assert profile.validate_content(env) == []
    assert unicodedata.is_normalized("NFC", (SAMPLES / f"{name}.xml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name,type_code", [("declaration-import", "A11"), ("declaration-export", "B11")])
def test_declaration_samples_number_lines_and_sum_totals(profile, name, type_code):
    from decimal import Decimal

    root = sample(name)
    assert root.findtext(q(DEC, "typeCode")) == type_code
    items = root.findall(q(DEC, "GoodsItem"))
    assert [i.findtext(q(DEC, "lineNo")) for i in items] == [str(n) for n in range(1, len(items) + 1)]
    total = sum(Decimal(i.findtext(q(DEC, "value"))) for i in items)
    assert Decimal(root.findtext(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}")) == total
    for item in items:
        assert item.findtext(q(DEC, "hsCode")) in profile.codes["hs_code"]
        assert item.findtext(q(DEC, "unit")) in profile.codes["unit"]


def test_payment_sample_description_is_the_canonical_rendering_of_pay_01(profile):
    root = sample("payment-order")
    lines = [(t.findtext(q(PAY, "declarationNumber")), t.findtext(q(PAY, "taxType")), t.findtext(q(PAY, "amountVND")))
             for t in root.findall(q(PAY, "TaxLine"))]
    description = root.findtext(q(PAY, "description"))
    canonical = "ECDI+MST:0312345678" + "".join(f"+TK:{d}/{t}/{a}" for d, t, a in lines)
    assert description.startswith(canonical + "+GC:")
    assert re.fullmatch(r"[\x20-\x2a\x2c-\x7e\xa0-\U0010ffff]{1,100}", description[len(canonical) + 4:])
    assert int(root.findtext(q(PAY, "totalVND"))) == sum(int(a) for _, _, a in lines)
    assert root.findtext(q(PAY, "bankCode")) in profile.codes["bank"]


# --- content refused, with the ECDI path of the first offending node -----------------------------
def goods(root, n):
    return root.findall(q(DEC, "GoodsItem"))[n - 1]


def set_text(path_in_declaration: str, value: str):
    def mutate(decl):
        decl.find("/".join(q(DEC, step) for step in path_in_declaration.split("/"))).text = value
    return mutate


def set_goods(n: int, field: str, value: str):
    def mutate(decl):
        goods(decl, n).find(q(DEC, field)).text = value
    return mutate


def goods_count(count: int):
    def mutate(decl):
        first = goods(decl, 1)
        for item in decl.findall(q(DEC, "GoodsItem")):
            decl.remove(item)
        at = list(decl).index(decl.find(q(DEC, "Invoice"))) + 1
        for n in range(count):
            item = copy.deepcopy(first)
            item.find(q(DEC, "lineNo")).text = str(n + 1)
            decl.insert(at + n, item)
    return mutate


def add_notes(value: str):
    def mutate(decl):
        etree.SubElement(decl, q(DEC, "notes")).text = value
    return mutate


REFUSED = [
    ("201 code points of Vietnamese (TXT-04)", set_goods(1, "description", vietnamese_text(201)), f"{GOODS}[1]/description"),
    ("leading space in Text (TXT-05)", set_text("Trader/name", " Công ty TNHH Thương mại Hải Đăng"), "/Envelope/Body/Content/Declaration/Trader/name"),
    ("trailing no-break space", set_text("Trader/address", "12 Nguyễn Huệ\u00a0"), "/Envelope/Body/Content/Declaration/Trader/address"),
    ("tab inside Text", set_goods(2, "description", "Bộ sạc\tcho máy tính"), f"{GOODS}[2]/description"),
    ("C1 control inside Text", set_goods(1, "description", "Máy tính\u0085xách tay"), f"{GOODS}[1]/description"),
    ("DEL inside Text", set_text("Partner/name", "Shenzhen\u007f Example"), "/Envelope/Body/Content/Declaration/Partner/name"),
    ("LF where not allowed", set_goods(1, "description", "Máy tính\nxách tay"), f"{GOODS}[1]/description"),
    ("LF at the end of an LF-allowed text", add_notes("Ghi chú\n"), "/Envelope/Body/Content/Declaration/notes"),
    ("hsCode of 7 digits", set_goods(2, "hsCode", "8504409"), f"{GOODS}[2]/hsCode"),
    ("51 goods items (N_goods_max)", goods_count(51), f"{GOODS}[51]"),
    ("Dec with exponent", set_text("grossMassKg", "3.865E2"), "/Envelope/Body/Content/Declaration/grossMassKg"),
    ("Dec with comma", set_text("grossMassKg", "386,5"), "/Envelope/Body/Content/Declaration/grossMassKg"),
    ("Dec with sign", set_text("grossMassKg", "+386.5"), "/Envelope/Body/Content/Declaration/grossMassKg"),
    ("Dec with white space", set_text("grossMassKg", " 386.5"), "/Envelope/Body/Content/Declaration/grossMassKg"),
    ("Dec zero", set_text("grossMassKg", "0.000"), "/Envelope/Body/Content/Declaration/grossMassKg"),
    ("Dec with 4 fraction digits of 3", set_goods(1, "quantity", "20.0001"), f"{GOODS}[1]/quantity"),
    ("Dec with 11 integer digits of 10", set_text("grossMassKg", "12345678901"), "/Envelope/Body/Content/Declaration/grossMassKg"),
    ("Dec with leading zero", set_goods(2, "value", "0800"), f"{GOODS}[2]/value"),
    ("29 February of a common year", set_text("Invoice/date", "2025-02-29"), "/Envelope/Body/Content/Declaration/Invoice/date"),
    ("Date with an offset", set_text("Invoice/date", "2025-03-02+07:00"), "/Envelope/Body/Content/Declaration/Invoice/date"),
    ("unknown declaration type", set_text("typeCode", "A12"), "/Envelope/Body/Content/Declaration/typeCode"),
    ("lower-case country", set_goods(1, "originCountry", "cn"), f"{GOODS}[1]/originCountry"),
]


@pytest.mark.parametrize("mutate,path", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_content_violation_is_refused_at_its_path(profile, mutate, path):
    decl = sample("declaration-import")
    mutate(decl)
    issues = profile.validate_content(envelope(decl))
    assert issues and issues[0].path == path, issues
    assert "{" not in issues[0].reason and len(issues[0].reason) < 200  # readable, no schema dump


ACCEPTED = [
    ("200 code points of Vietnamese", set_goods(1, "description", vietnamese_text(200))),
    ("LF inside an LF-allowed text", add_notes("Dòng một\nDòng hai")),
    ("50 goods items", goods_count(50)),
    ("smallest positive Dec", set_text("grossMassKg", "0.001")),
    ("29 February of a leap year", set_text("Invoice/date", "2024-02-29")),
    ("inner spaces and a non-BMP character", set_goods(1, "description", "Máy tính  xách tay 💻")),
]


@pytest.mark.parametrize("mutate", [r[1] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_content_at_the_limits_is_accepted(profile, mutate):
    decl = sample("declaration-import")
    mutate(decl)
    assert profile.validate_content(envelope(decl)) == []


def test_200_code_points_are_more_than_200_octets():
    assert len(vietnamese_text(200).encode("utf-8")) > 200  # so the limit really counts code points


@pytest.mark.parametrize("year", [1900, 2000, 2023, 2024, 2100])
def test_invoice_dates_follow_the_calendar(profile, year):
    from datetime import date

    decl = sample("declaration-import")
    node = decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'date')}")
    for month in range(0, 14):
        for day in (0, 1, 28, 29, 30, 31, 32):
            node.text = f"{year}-{month:02d}-{day:02d}"
            try:
                valid = bool(date(year, month, day))
            except ValueError:
                valid = False
            assert (profile.validate_content(decl) == []) is valid, node.text


def test_content_document_is_chosen_by_its_qname(profile):
    query = etree.Element(q(ENV, "Query"), nsmap={None: ENV})
    etree.SubElement(query, q(ENV, "afterSequence")).text = "1"
    approval = etree.Element(q(PAY, "PaymentApproval"), nsmap={None: PAY})
    for name, value in (("paymentOrderId", "PO20250314000001"), ("checker", "tranthib"), ("otp", "123456")):
        etree.SubElement(approval, q(PAY, name)).text = value
    assert profile.validate_content(envelope(query)) == []
    assert profile.validate_content(envelope(approval)) == []
    query[0].text = "01"
    assert paths(profile.validate_content(envelope(query))) == ["/Envelope/Body/Content/Query/afterSequence"]
    amendment = etree.Element(q(DEC, "Amendment"), nsmap={None: DEC})
    etree.SubElement(amendment, q(DEC, "declarationNumber")).text = "105123456789"
    etree.SubElement(amendment, q(DEC, "reason")).text = "Sửa trị giá dòng hàng 2"
    declaration = sample("declaration-import")
    set_goods(2, "hsCode", "850440")(declaration)
    amendment.append(declaration)
    assert paths(profile.validate_content(envelope(amendment))) == [
        "/Envelope/Body/Content/Amendment/Declaration/GoodsItem[2]/hsCode"]


def test_unknown_or_missing_content_child_is_an_issue(profile):
    unknown = etree.Element(q(DEC, "Invoice"), nsmap={None: DEC})
    assert paths(profile.validate_content(envelope(unknown))) == ["/Envelope/Body/Content/Invoice"]
    env = envelope()
    env.find(f"{q(ENV, 'Body')}/{q(ENV, 'Content')}").clear()
    assert paths(profile.validate_content(env)) == ["/Envelope/Body/Content"]


def test_payment_order_limits(profile):
    order = sample("payment-order")
    order.find(q(PAY, "description")).text = "ECDI+MST:0312345678+GC:" + "a" * 1978  # 2001 characters
    assert paths(profile.validate_content(order)) == ["/PaymentOrder/description"]
    order = sample("payment-order")                                           # 2 tax lines
    line = order.find(q(PAY, "TaxLine"))
    for _ in range(48):
        line.addnext(copy.deepcopy(line))
    assert profile.validate_content(order) == []                              # 50 = N_taxlines_max
    line.addnext(copy.deepcopy(line))
    assert paths(profile.validate_content(order)) == ["/PaymentOrder/TaxLine[51]"]


# --- envelopes -----------------------------------------------------------------------------------
def test_create_message_issue_without_offset_is_refused(profile):
    env = envelope(**{"SendApplication/createMessageIssue": "2025-03-14T09:15:02"})
    assert paths(profile.validate_envelope(env, "request")) == ["/Envelope/Header/SendApplication/createMessageIssue"]


def test_wrong_header_element_order_is_refused_at_the_first_misplaced_element(profile):
    env = envelope()
    header = env.find(q(ENV, "Header"))
    header.find(q(ENV, "From")).addprevious(header.find(q(ENV, "To")))
    issues = profile.validate_envelope(env, "request")
    assert paths(issues)[0] == "/Envelope/Header/To" and "e:From" in issues[0].reason


@pytest.mark.parametrize("fields,path", [
    ({"Reference/version": "2.0"}, "/Envelope/Header/Reference/version"),
    ({"Reference/messageId": "3F2B8C1E-7A4D-4E2F-9B1A-5C6D7E8F9A0B"}, "/Envelope/Header/Reference/messageId"),
    ({"procedureType": "0"}, "/Envelope/Header/procedureType"),
    ({"Subject/type": "000"}, "/Envelope/Header/Subject/type"),
    ({"Subject/function": "29"}, "/Envelope/Header/Subject/function"),
    ({"Subject/reference": "HD 2025"}, "/Envelope/Header/Subject/reference"),
    ({"From/identity": "031234567"}, "/Envelope/Header/From/identity"),
    ({"To/identity": "03tg"}, "/Envelope/Header/To/identity"),
    ({"SendApplication/createMessageIssue": "2025-03-14T24:00:00+07:00"}, "/Envelope/Header/SendApplication/createMessageIssue"),
    ({"SendApplication/name": "ViDu-Customs-" + "x" * 38}, "/Envelope/Header/SendApplication/name"),
    ({"SendApplication/certificationId": "ECDI-25-42"}, "/Envelope/Header/SendApplication/certificationId"),
])
def test_header_type_violation_is_refused_at_its_path(profile, fields, path):
    assert paths(profile.validate_envelope(envelope(**fields), "request"))[:1] == [path]


@pytest.mark.parametrize("fields", [
    {"Reference/version": "1.1"},                                    # version support is step 6 (X0003)
    {"SendApplication/certificationId": "ECDI-0000-00000"},          # presence per profile is ENV-08
    {"Subject/reference": "3f2b8c1e-7a4d-4e2f-9b1a-5c6d7e8f9a0b", "Subject/function": "13"},
    {"SendApplication/createMessageIssue": "2025-03-14T02:15:02.123Z"},
])
def test_header_values_left_to_other_steps_are_lexically_accepted(profile, fields):
    assert profile.validate_envelope(envelope(**fields), "request") == []


def test_content_child_is_not_the_envelopes_business(profile):
    decl = sample("declaration-import")
    set_goods(1, "hsCode", "x")(decl)
    assert profile.validate_envelope(envelope(decl), "request") == []


def test_attributes_are_refused_even_those_xsd_tolerates(profile):
    env = envelope()
    env.find(q(ENV, "Header")).set("id", "h1")
    goods(env.find(f".//{q(DEC, 'Declaration')}"), 2).set(f"{{{XSI}}}schemaLocation", "urn:ecdi:declaration:1 d.xsd")
    assert paths(profile.validate_envelope(env, "request")) == ["/Envelope/Header/@id"]
    assert paths(profile.validate_content(env)) == [f"{GOODS}[2]/@schemaLocation"]


def test_character_data_between_elements_is_refused_at_its_text_node(profile):
    env = envelope()
    header = env.find(q(ENV, "Header"))
    header.text = "\n  "                                                # text()[1], white space only
    header.find(q(ENV, "procedureType")).tail = "\n  "                  # text()[2], white space only
    header.find(q(ENV, "Reference")).tail = " stray "                   # text()[3]
    assert paths(profile.validate_envelope(env, "request")) == ["/Envelope/Header/text()[3]"]


def test_signatures_are_ignored_wherever_they_stand(profile):
    env = envelope()
    etree.SubElement(env, q(DS, "Signature"), nsmap={"ds": DS}).set("Id", "anything-inside-is-step-9")
    assert profile.validate_envelope(env, "request") == []
    misplaced = envelope()
    etree.SubElement(misplaced.find(q(ENV, "Header")), q(DS, "Signature"), nsmap={"ds": DS})
    etree.SubElement(misplaced, q(DS, "Signature"), nsmap={"ds": DS})
    etree.SubElement(misplaced, q(DS, "Signature"), nsmap={"ds": DS})
    assert profile.validate_envelope(misplaced, "request") == []
    assert len(list(misplaced.iter(q(DS, "Signature")))) == 3       # the caller's tree is left untouched


def test_missing_header_element_is_refused(profile):
    env = envelope()
    subject = env.find(f"{q(ENV, 'Header')}/{q(ENV, 'Subject')}")
    subject.remove(subject.find(q(ENV, "receiveApplication")))
    assert paths(profile.validate_envelope(env, "request")) == ["/Envelope/Header/Subject"]


def test_reply_envelope_holds_one_result_per_table_7_1(profile):
    result = Result(result_code="X0002", errors=[ErrorEntry("X0002", "/Envelope/Header/To", "Thông điệp sai cấu trúc")])
    reply = build_envelope(reply_header(), result.to_element())
    assert profile.validate_envelope(reply, "reply") == []
    reply.find(f".//{q(ENV, 'resultCode')}").text = "X0005"                 # a 1.1 code
    assert paths(profile.validate_envelope(reply, "reply")) == ["/Envelope/Body/Content/Result/resultCode"]
    receipt = Result(result_code="00000", sequence=1, reception_number="3000123456").to_element()
    receipt.remove(receipt.find(q(ENV, "sequence")))
    reply = build_envelope(reply_header(**{"Subject/function": "29", "Subject/reference": "3f2b8c1e-7a4d-4e2f-9b1a-5c6d7e8f9a0b"}), receipt)
    assert paths(profile.validate_envelope(reply, "reply")) == ["/Envelope/Body/Content/Result/receptionNumber"]


def test_reply_error_entries_are_indexed(profile):
    errors = [ErrorEntry("S0005", f"/Envelope/Body/Content/Declaration/GoodsItem[{n}]/hsCode", "Mã HS không tồn tại")
              for n in (1, 2)]
    result = Result(result_code="S0005", sequence=1, errors=errors).to_element()
    result.findall(f".//{q(ENV, 'Error')}")[1].find(q(ENV, "code")).text = "S5"
    reply = build_envelope(reply_header(**{"Subject/function": "272", "procedureType": "1", "Subject/type": "929",
                                           "Subject/reference": "3f2b8c1e-7a4d-4e2f-9b1a-5c6d7e8f9a0b"}), result)
    assert paths(profile.validate_envelope(reply, "reply")) == ["/Envelope/Body/Content/Result/Errors/Error[2]/code"]


def test_request_header_is_not_a_reply_header(profile):
    assert paths(profile.validate_envelope(envelope(), "reply"))[:1] == ["/Envelope/Header/From/identity"]
    with pytest.raises(ValueError):
        profile.validate_envelope(envelope(), "response")


# --- profile data errors and the content hash ----------------------------------------------------
@pytest.fixture
def profile_copy(tmp_path) -> Path:
    target = tmp_path / "ecdi-1.0"
    shutil.copytree(PROFILE_DIR, target)
    return target


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("file,old,new,message", [
    ("profile.toml", "T_send = 60\n", "", r"profile\.toml: params\.T_send: missing"),
    ("profile.toml", 'SHA1 = "accept-with-warning"', 'SHA1 = "maybe"', r"profile\.toml: params\.SHA1: 'maybe' is not one of"),
    ("profile.toml", 'scaled = ["T_send",', 'scaled = ["T_sendd",', r"profile\.toml: timers\.scaled: 'T_sendd'"),
    ("profile.toml", 'central_office = "00HQ"', 'central_office = "99XX"', r"deployment\.central_office"),
    ("profile.toml", 'max = "T_send"', 'max = "T_sned"', r"profile\.toml: pixit\.t_send_s\.max"),
    ("codes.toml", 'functions = ["271"]\nmeaning = "Invalid', 'functions = ["8"]\nmeaning = "Invalid',
     r"codes\.toml: result_code\.U0001\.functions"),
    ("codes.toml", 'content = "pay:OtpRequest"', 'content = "pay:OtpReq"', r"codes\.toml: permitted_request\[6\]\.content"),
    ("requirements.toml", '[TRN-06]\nbinds = ["CGW"]\nlevel = ""', '[TRN-06]\nbinds = ["CGW"]\nlevel = "MUST"',
     r"requirements\.toml: TRN-06\.level"),
    ("requirements.toml", '[TRN-06]\nbinds = ["CGW"]\nlevel = ""\ncgw_level = "MUST"',
     '[TRN-06]\nbinds = ["CGW"]\nlevel = ""\ncgw_level = "OUGHT"', r"requirements\.toml: TRN-06\.cgw_level"),
    ("requirements.toml", '[TRN-06]\nbinds = ["CGW"]\nlevel = ""\ncgw_level = "MUST"\n', '[TRN-06]\nbinds = ["CGW"]\nlevel = ""\n',
     r"requirements\.toml: TRN-06\.cgw_level"),
    ("requirements.toml", 'capability = "ecdsa"', 'capability = "rsa"', r"requirements\.toml: SIG-03\.capability"),
    ("requirements.toml", "[TRN-01]\n", "[TRN-01]\nbind = 1\n", r"requirements\.toml: TRN-01\.bind: unknown key"),
])
def test_bad_profile_data_names_file_and_key(profile_copy, file, old, new, message):
    edit(profile_copy / file, old, new)
    with pytest.raises(ProfileError, match=message):
        Profile(profile_copy)


def test_content_hash_identifies_the_profile_data(profile, profile_copy):
    assert re.fullmatch(r"[0-9a-f]{64}", profile.content_hash())
    assert Profile(profile_copy).content_hash() == profile.content_hash()
    edit(profile_copy / "xsd" / "types.xsd", "<xs:maxLength value=\"200\"/>", "<xs:maxLength value=\"201\"/>")
    assert Profile(profile_copy).content_hash() != profile.content_hash()
