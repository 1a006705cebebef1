"""The enterprise credit report's 29 items: sections, record types, body schemas, sources.

The December 2021 group standard of the Yangtze River Delta credit chain
(《长三角征信链征信一体化服务规范》, published jointly by the PBoC offices of
Shanghai, Jiangsu, Zhejiang and Anhui) gives the chain's enterprise credit
report 29 items. Its full text is not public in machine-readable form; the
published outline names, among them, business-registration basics,
shareholders, directors/supervisors/executives, social-insurance and
housing-fund payments, main balance-sheet and income-statement lines, main
financial ratios, tax payments and ratings, customs import/export, water and
electricity payments, administrative penalties, judicial enforcement, and red
and black lists. **The list below is a reconstruction from that outline**: the
items it names, completed to 29 with the items an enterprise credit report of
the region's agencies carries, grouped in seven sections.

Each item is one record type (``RecordEntry.record_type``) with:

* a **section** of the report;
* its **sources** — the registries or platforms that supply it (market
  regulator, tax platform, court, utility, customs, social-insurance bureau,
  housing-fund centre, the PBoC credit reference centre, …); a record's
  ``source`` field is ``<place>-<source key>``, for example ``hz-amr``;
* a **JSON Schema** (draft 2020-12, checked by ``jsonschema-rs``) for its body,
  every string, array and number bounded.

Invariants:
    * :data:`ledger.entries.RECORD_TYPES` is derived from :data:`ITEMS` and
      keeps the eight record types of the first format (``registration``,
      ``tax_rating``, ``social_insurance``, ``housing_fund``, ``admin_penalty``,
      ``judicial_enforcement``, ``red_list``, ``black_list``) under their names,
      so every ledger written before this catalogue still parses and verifies.
    * Schemas are checked at ingest (:func:`check_record`), never when a ledger
      is read or verified: a stored body is evidence as it was committed. The
      eight first-format items check the types of the fields they name and
      require none (bodies written for them before still ingest); the 21 items
      added with the catalogue require every field, refuse unknown ones and
      require a source among their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from ledger.errors import InvalidRecordError

__all__ = [
    "INDUSTRIES",
    "ITEMS",
    "LEGACY_RECORD_TYPES",
    "SECTIONS",
    "SIZES",
    "SOURCES",
    "ReportItem",
    "Section",
    "Source",
    "check_body",
    "check_record",
    "item_for",
    "source_for",
]

_SAFE = 2**53 - 1
INDUSTRIES = (
    "manufacturing",
    "wholesale",
    "software",
    "logistics",
    "construction",
    "textiles",
    "chemicals",
    "catering",
)
SIZES = ("micro", "small", "medium", "large")

# The eight record types of the first ledger format, in their first order.
LEGACY_RECORD_TYPES = (
    "registration",
    "tax_rating",
    "social_insurance",
    "housing_fund",
    "admin_penalty",
    "judicial_enforcement",
    "red_list",
    "black_list",
)


@dataclass(frozen=True, slots=True)
class Section:
    """A section of the report, in the standard's order."""

    key: str
    title: str
    title_zh: str


@dataclass(frozen=True, slots=True)
class Source:
    """A registry or platform that supplies records (the ``<source key>`` of ``source``)."""

    key: str
    name: str
    name_zh: str


@dataclass(frozen=True, slots=True)
class ReportItem:
    """One item of the report: its record type, section, sources and body schema."""

    number: int
    record_type: str
    section: str
    title: str
    title_zh: str
    sources: tuple[str, ...]
    schema: Mapping[str, Any]
    summary: tuple[str, ...]  # the body fields a printed report shows, in order

    @property
    def legacy(self) -> bool:
        """One of the eight record types of the first ledger format."""
        return self.record_type in LEGACY_RECORD_TYPES


SECTIONS = (
    Section("registration", "Registration", "登记注册信息"),
    Section("operations", "Operations", "经营信息"),
    Section("finances", "Finances", "财务信息"),
    Section("tax", "Tax", "纳税信息"),
    Section("public_credit", "Public credit", "公共信用信息"),
    Section("judicial", "Judicial", "司法信息"),
    Section("other", "Other", "其他信息"),
)

SOURCES = (
    Source("amr", "market regulator", "市场监督管理局"),
    Source("hrss", "social-insurance bureau", "人力资源和社会保障局"),
    Source("hpf", "housing fund centre", "住房公积金管理中心"),
    Source("water", "water utility", "供水企业"),
    Source("power", "electricity utility", "供电企业"),
    Source("customs", "customs", "海关"),
    Source("licensing", "licensing authority", "行业主管部门"),
    Source("tax", "tax platform", "税务局电子税务平台"),
    Source("cpa", "accounting firm (filed audit report)", "会计师事务所"),
    Source("agency", "credit agency (derived)", "征信机构"),
    Source("credit", "public credit platform", "公共信用信息平台"),
    Source("court", "people's court", "人民法院"),
    Source("pboc", "PBoC credit reference centre", "中国人民银行征信中心"),
    Source("cnipa", "intellectual property office", "知识产权局"),
    Source("gov", "people's government", "人民政府"),
)

# --- schema building blocks -----------------------------------------------------------


def _int(lo: int = 0, hi: int = _SAFE) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


def _str(hi: int = 120, lo: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": lo, "maxLength": hi}


def _enum(*values: str) -> dict[str, Any]:
    return {"enum": list(values)}


_MONEY = _int()  # integer minor units (fen), never negative
_SIGNED = _int(-_SAFE)  # profits and equity may be negative
_BP = _int(-10_000_000, 10_000_000)  # a ratio in basis points (1/10,000)
_YEAR = _int(1949, 2100)
_DATE = {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"}
_PERIOD = {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}
_ADMIN = {"type": "string", "pattern": "^[0-9]{6}$"}


def _array(item: Mapping[str, Any], hi: int) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 1, "maxItems": hi}


def _object(props: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """An object schema: strict → every field required, no others; else typed when present."""
    out: dict[str, Any] = {"type": "object", "properties": dict(props), "maxProperties": 64}
    if strict:
        out["required"] = list(props)
        out["additionalProperties"] = False
    return out


_PAYMENTS = {
    "period": _PERIOD,
    "employees": _int(0, 10_000_000),
    "paid_minor": _MONEY,
    "arrears_minor": _MONEY,
}
_UTILITY = {
    "year": _YEAR,
    "paid_minor": _MONEY,
    "arrears_minor": _MONEY,
    "overdue_months": _int(0, 12),
}


def _item(
    number: int,
    record_type: str,
    section: str,
    title: str,
    title_zh: str,
    sources: tuple[str, ...],
    props: Mapping[str, Any],
) -> ReportItem:
    legacy = record_type in LEGACY_RECORD_TYPES
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{record_type}: {title}",
        **_object(props, strict=not legacy),
    }
    return ReportItem(
        number, record_type, section, title, title_zh, sources, schema, tuple(props)[:6]
    )


ITEMS = (
    # Registration (from the market regulator's registry)
    _item(1, "registration", "registration", "registration basics", "工商登记基本信息", ("amr",), {
        "name": _str(100),
        "legal_representative": _str(40),
        "registered_capital_minor": _MONEY,
        "industry": _enum(*INDUSTRIES),
        "size": _enum(*SIZES),
        "status": _enum("active", "revoked", "cancelled", "dissolving"),
        "admin_code": _ADMIN,
        "established_on": _DATE,
    }),
    _item(2, "shareholders", "registration", "shareholders and contributions", "股东及出资信息",
          ("amr",), {
        "as_of": _DATE,
        "shareholders": _array(_object({
            "name": _str(100),
            "kind": _enum("natural_person", "enterprise", "state"),
            "subscribed_minor": _MONEY,
            "paid_in_minor": _MONEY,
            "share_bp": _int(0, 10_000),
        }), 50),
    }),
    _item(3, "executives", "registration", "directors, supervisors and executives", "董监高信息",
          ("amr",), {
        "as_of": _DATE,
        "members": _array(_object({
            "name": _str(40),
            "role": _enum("chair", "director", "supervisor", "general_manager", "cfo"),
        }), 50),
    }),
    _item(4, "registration_change", "registration", "registration changes", "变更登记信息",
          ("amr",), {
        "changed_on": _DATE,
        "field": _enum("name", "address", "legal_representative", "registered_capital",
                       "business_scope", "shareholders"),
        "before": _str(200),
        "after": _str(200),
    }),
    _item(5, "branches", "registration", "branches", "分支机构信息", ("amr",), {
        "branches": _array(_object({
            "name": _str(100), "admin_code": _ADMIN, "established_on": _DATE,
        }), 100),
    }),
    # Operations
    _item(6, "social_insurance", "operations", "social-insurance payments", "社保缴纳信息",
          ("hrss",), _PAYMENTS),
    _item(7, "housing_fund", "operations", "housing-fund payments", "住房公积金缴存信息",
          ("hpf",), _PAYMENTS),
    _item(8, "water_payment", "operations", "water payments", "水费缴纳信息", ("water",), {
        "tonnes": _int(0, 10**9), **_UTILITY,
    }),
    _item(9, "electricity_payment", "operations", "electricity payments", "电费缴纳信息",
          ("power",), {"kwh": _int(0, 10**12), **_UTILITY}),
    _item(10, "customs_trade", "operations", "customs import and export", "海关进出口信息",
          ("customs",), {
        "year": _YEAR,
        "imports_minor": _MONEY,
        "exports_minor": _MONEY,
        "declarations": _int(0, 10**7),
        "customs_credit": _enum("advanced_certified", "general_certified", "registered",
                                "dishonest"),
    }),
    _item(11, "qualification", "operations", "qualifications and licences", "资质许可信息",
          ("licensing",), {
        "name": _str(100),
        "licence_no": _str(40),
        "issuer": _str(100),
        "valid_until": _DATE,
        "status": _enum("valid", "expired", "revoked"),
    }),
    # Finances (statements filed with the tax platform; ratios derived by the agency)
    _item(12, "balance_sheet", "finances", "main balance-sheet lines", "资产负债表主要项目",
          ("tax",), {
        "year": _YEAR,
        "total_assets_minor": _MONEY,
        "total_liabilities_minor": _MONEY,
        "equity_minor": _SIGNED,
        "current_assets_minor": _MONEY,
        "current_liabilities_minor": _MONEY,
    }),
    _item(13, "income_statement", "finances", "main income-statement lines", "利润表主要项目",
          ("tax",), {
        "year": _YEAR,
        "revenue_minor": _MONEY,
        "operating_cost_minor": _MONEY,
        "operating_profit_minor": _SIGNED,
        "net_profit_minor": _SIGNED,
    }),
    _item(14, "financial_ratios", "finances", "main financial ratios", "主要财务指标",
          ("agency",), {
        "year": _YEAR,
        "debt_to_assets_bp": _BP,
        "current_ratio_bp": _BP,
        "net_margin_bp": _BP,
        "return_on_equity_bp": _BP,
    }),
    _item(15, "audit_report", "finances", "audit opinion", "审计报告信息", ("cpa",), {
        "year": _YEAR,
        "auditor": _str(100),
        "opinion": _enum("unqualified", "qualified", "adverse", "disclaimer"),
        "report_no": _str(40),
    }),
    # Tax
    _item(16, "tax_payment", "tax", "tax payments", "纳税信息", ("tax",), {
        "year": _YEAR,
        "vat_minor": _MONEY,
        "income_tax_minor": _MONEY,
        "other_minor": _MONEY,
        "total_minor": _MONEY,
    }),
    _item(17, "tax_rating", "tax", "tax credit rating (A/B/M/C/D)", "纳税信用等级", ("tax",), {
        "year": _YEAR,
        "rating": _enum("A", "B", "M", "C", "D"),
        "authority": _str(100),
    }),
    _item(18, "tax_arrears", "tax", "tax arrears", "欠税信息", ("tax",), {
        "tax": _enum("vat", "enterprise_income_tax", "stamp_duty", "property_tax"),
        "amount_minor": _MONEY,
        "since": _DATE,
        "status": _enum("outstanding", "cleared"),
    }),
    # Public credit
    _item(19, "admin_penalty", "public_credit", "administrative penalties", "行政处罚信息",
          ("amr", "tax", "credit"), {
        "authority": _str(100),
        "decision_no": _str(60),
        "amount_minor": _MONEY,
        "reason": _str(100),
        "status": _enum("in_force", "resolved"),
        "resolved_on": _DATE,
    }),
    _item(20, "admin_licence", "public_credit", "administrative licences", "行政许可信息",
          ("credit",), {
        "authority": _str(100),
        "licence_no": _str(60),
        "matter": _str(100),
        "granted_on": _DATE,
        "valid_until": _DATE,
    }),
    _item(21, "red_list", "public_credit", "red list (commendations)", "红名单信息",
          ("credit", "tax"), {"list": _str(100), "year": _YEAR, "authority": _str(100)}),
    _item(22, "black_list", "public_credit", "black list and abnormal operations",
          "黑名单及经营异常信息", ("credit", "amr"), {
        "list": _str(100), "reason": _str(100), "since": _DATE,
    }),
    # Judicial
    _item(23, "judgement", "judicial", "judgements", "裁判文书信息", ("court",), {
        "court": _str(100),
        "case_no": _str(60),
        "cause": _str(60),
        "role": _enum("plaintiff", "defendant", "third_party"),
        "amount_minor": _MONEY,
        "decided_on": _DATE,
    }),
    _item(24, "judicial_enforcement", "judicial", "enforcement (judgement debtor)", "被执行人信息",
          ("court",), {
        "court": _str(100),
        "case_no": _str(60),
        "amount_minor": _MONEY,
        "status": _enum("pending", "concluded"),
    }),
    _item(25, "dishonest_debtor", "judicial", "dishonest judgement debtor", "失信被执行人信息",
          ("court",), {
        "court": _str(100),
        "case_no": _str(60),
        "obligation": _str(100),
        "listed_on": _DATE,
        "status": _enum("listed", "removed"),
    }),
    # Other
    _item(26, "honour", "other", "honours and awards", "荣誉信息", ("gov",), {
        "title": _str(100), "grantor": _str(100), "year": _YEAR,
    }),
    _item(27, "credit_commitment", "other", "credit commitments", "信用承诺信息", ("credit",), {
        "matter": _str(100),
        "authority": _str(100),
        "committed_on": _DATE,
        "status": _enum("kept", "breached"),
    }),
    _item(28, "secured_financing", "other", "mortgages and pledges", "动产抵押及质押登记信息",
          ("pboc", "amr"), {
        "kind": _enum("chattel_mortgage", "equity_pledge", "receivables_pledge", "finance_lease"),
        "registration_no": _str(40),
        "secured_party": _str(100),
        "amount_minor": _MONEY,
        "registered_on": _DATE,
        "status": _enum("active", "released"),
    }),
    _item(29, "intellectual_property", "other", "intellectual property", "知识产权信息",
          ("cnipa",), {
        "kind": _enum("invention_patent", "utility_model", "design_patent", "trademark",
                      "software_copyright"),
        "count": _int(1, 1_000_000),
        "latest_granted_on": _DATE,
    }),
)  # fmt: skip

_BY_TYPE = {i.record_type: i for i in ITEMS}
_SOURCES = {s.key: s for s in SOURCES}
_VALIDATORS = {i.record_type: jsonschema_rs.validator_for(dict(i.schema)) for i in ITEMS}


def item_for(record_type: str) -> ReportItem:
    """The item of ``record_type``.

    Raises:
        InvalidRecordError: not a record type of the catalogue.
    """
    try:
        return _BY_TYPE[record_type]
    except (KeyError, TypeError):
        raise InvalidRecordError(
            f"record_type must be one of the report's {len(ITEMS)} items, got {record_type!r}"
        ) from None


def source_for(source: str) -> Source | None:
    """The registry behind a record's ``source`` (``<place>-<key>``), or None if unknown."""
    key = source.rsplit("-", 1)[-1] if isinstance(source, str) else ""
    return _SOURCES.get(key)


def _path(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts) or " (top level)"


def check_body(record_type: str, body: Any, where: str = "") -> ReportItem:
    """Check a record's body against its item's schema; returns the item.

    Raises:
        InvalidRecordError: one plain sentence naming the item, the field and the rule.
    """
    prefix = f"{where}: " if where else ""
    try:
        item = item_for(record_type)
    except InvalidRecordError as exc:
        raise InvalidRecordError(f"{prefix}{exc}") from None
    error = next(_VALIDATORS[item.record_type].iter_errors(body), None)
    if error is not None:
        raise InvalidRecordError(
            f"{prefix}the body of a {record_type} record (item {item.number}, {item.title}) is "
            f"not valid at body{_path(list(error.instance_path))}: {error.message}"
        )
    return item


def check_record(record_type: str, source: str, body: Any, where: str = "") -> None:
    """Check a record about to be ingested against its item: body schema and source.

    Args:
        record_type: the record's type, one of :data:`ITEMS`.
        source: the record's ``source`` (``<place>-<source key>``).
        body: the record's body (decoded JSON).
        where: names the record in the message (``"records[3]"``); empty for none.

    Raises:
        InvalidRecordError: one plain sentence naming the item, the field and the rule.
    """
    prefix = f"{where}: " if where else ""
    item = check_body(record_type, body, where)
    if not item.legacy:
        found = source_for(source)
        if found is None or found.key not in item.sources:
            want = " or ".join(f"<place>-{k} ({_SOURCES[k].name})" for k in item.sources)
            raise InvalidRecordError(
                f"{prefix}a {record_type} record comes from {want}; "
                f"source {source!r} is not one of them"
            )
