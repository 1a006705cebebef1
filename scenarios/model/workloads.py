"""Seeded, deterministic synthetic enterprises and credit records.

Enterprise ``(city, i)`` for ``0 <= i < count(city)`` gets a valid USCC with
its city's administrative code and a home node in its city. Each node's data
is a stream: the records it holds about its home enterprises, plus records
about enterprises of other cities that have a branch or a case in its city.
Nothing is held in memory beyond one enterprise, so 16.82 million
enterprises stream in constant memory.

Invariants: the same (topology, enterprises, seed) always yields the same
codes, records and bodies (bodies are pure functions of the seed; salts are
added later by the ledger and are random).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ledger.items import INDUSTRIES, SIZES, item_for
from ledger.log import CorrectionDraft, RecordDraft
from ledger.uscc import SERIAL_LIMIT, make_uscc
from scenarios.model.topology import City, Topology

__all__ = ["Enterprise", "SyntheticData"]

_MASK = (1 << 64) - 1
_CHUNK = 1 << 16  # enterprises hashed per numpy call

_WORDS = "华信达通盛泰恒瑞鑫安宏远鼎丰裕德兴隆海创联科源嘉润昌"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_INDUSTRIES = INDUSTRIES
_TAX = ("A", "B", "M", "C", "D")
_COURTS = {
    "sh": "上海市第一中级人民法院",
    "nj": "南京市中级人民法院",
    "sz": "苏州市中级人民法院",
    "cz": "常州市中级人民法院",
    "sq": "宿迁市中级人民法院",
    "hz": "杭州市中级人民法院",
    "tz": "台州市中级人民法院",
    "hf": "合肥市中级人民法院",
}

# --- the region's make-up (illustrative: shaped on the cities' economies, not measured) ----
# Industry mix per city, weights over INDUSTRIES (manufacturing, wholesale, software,
# logistics, construction, textiles, chemicals, catering); other cities take _DEFAULT_MIX.
CITY_INDUSTRY_MIX: dict[str, tuple[int, ...]] = {
    "sh": (12, 30, 22, 12, 8, 3, 3, 10),
    "nj": (15, 25, 20, 12, 12, 4, 4, 8),
    "sz": (35, 20, 12, 10, 8, 8, 4, 3),
    "cz": (38, 18, 6, 10, 10, 8, 7, 3),
    "sq": (20, 22, 4, 16, 14, 12, 2, 10),
    "hz": (15, 26, 26, 10, 8, 6, 2, 7),
    "tz": (40, 20, 4, 8, 8, 6, 9, 5),
    "hf": (20, 24, 14, 12, 14, 4, 4, 8),
}
_DEFAULT_MIX = (25, 25, 8, 12, 12, 6, 4, 8)
# Size classes (micro, small, medium, large) per mille, by industry: most registered
# enterprises are micro, and more so in services than in process industries.
INDUSTRY_SIZE_MIX: dict[str, tuple[int, int, int, int]] = {
    "manufacturing": (700, 230, 60, 10),
    "wholesale": (820, 150, 27, 3),
    "software": (800, 160, 35, 5),
    "logistics": (800, 165, 30, 5),
    "construction": (740, 210, 42, 8),
    "textiles": (720, 220, 52, 8),
    "chemicals": (620, 280, 83, 17),
    "catering": (900, 90, 9, 1),
}
# Per mille of enterprises of each size (micro, small, medium, large) with a record of each
# item at their home node (the registration basics are always there).
HOME_RATES: dict[str, tuple[int, int, int, int]] = {
    "shareholders": (120, 400, 900, 1000),
    "executives": (60, 300, 850, 1000),
    "registration_change": (50, 120, 300, 500),
    "branches": (3, 25, 200, 600),
    "social_insurance": (300, 720, 950, 1000),
    "housing_fund": (80, 320, 800, 980),
    "water_payment": (30, 120, 350, 600),
    "electricity_payment": (60, 250, 600, 900),
    "customs_trade": (8, 50, 200, 450),
    "qualification": (25, 80, 250, 450),
    "balance_sheet": (60, 250, 750, 950),
    "income_statement": (60, 250, 750, 950),
    "financial_ratios": (20, 120, 600, 900),
    "audit_report": (2, 25, 300, 850),
    "tax_payment": (80, 350, 850, 1000),
    "tax_rating": (420, 700, 900, 950),
    "tax_arrears": (12, 15, 12, 8),
    "admin_penalty": (35, 60, 100, 150),
    "admin_licence": (30, 90, 250, 450),
    "red_list": (8, 20, 70, 180),
    "black_list": (10, 6, 4, 2),
    "judgement": (12, 40, 150, 350),
    "judicial_enforcement": (18, 30, 40, 60),
    "dishonest_debtor": (7, 8, 5, 2),
    "honour": (1, 8, 60, 200),
    "credit_commitment": (15, 40, 100, 150),
    "secured_financing": (6, 30, 150, 300),
    "intellectual_property": (12, 60, 300, 700),
}
# Industries where an item is more (or less) common: factor in tenths of HOME_RATES.
INDUSTRY_FACTORS: dict[str, dict[str, int]] = {
    "water_payment": {
        "manufacturing": 20,
        "textiles": 25,
        "chemicals": 30,
        "catering": 25,
        "software": 4,
        "wholesale": 6,
    },
    "electricity_payment": {
        "manufacturing": 18,
        "textiles": 18,
        "chemicals": 20,
        "catering": 14,
        "software": 6,
        "wholesale": 7,
    },
    "customs_trade": {
        "manufacturing": 25,
        "wholesale": 25,
        "textiles": 30,
        "chemicals": 20,
        "software": 5,
        "logistics": 12,
        "construction": 1,
        "catering": 0,
    },
    "qualification": {
        "construction": 40,
        "chemicals": 30,
        "catering": 25,
        "logistics": 15,
        "software": 5,
        "wholesale": 5,
    },
    "intellectual_property": {
        "software": 40,
        "manufacturing": 20,
        "chemicals": 15,
        "textiles": 10,
        "wholesale": 5,
        "catering": 3,
        "logistics": 3,
        "construction": 3,
    },
    "judgement": {"construction": 20},
}
HOME_ITEMS = tuple(HOME_RATES)
BRANCH_PER_MILLE = 120  # enterprises with activity in a second city
# Probability (per mille) of each item at the node of that second city.
BRANCH_MIX = (
    ("tax_rating", 600),
    ("social_insurance", 650),
    ("tax_payment", 250),
    ("electricity_payment", 150),
    ("admin_penalty", 200),
    ("admin_licence", 60),
    ("judgement", 50),
    ("judicial_enforcement", 60),
)
CORRECTION_PER_MILLE = 350  # penalties later resolved or amended
HOME_SALT0 = 2  # hash salt of home item n is HOME_SALT0 + n
BRANCH_SALT0 = 40  # and of branch item n, BRANCH_SALT0 + n (all below 64: see _h)


def _cumulative(weights: tuple[int, ...]) -> tuple[int, ...]:
    """Weights → cumulative thresholds over 0..999."""
    total, acc, out = sum(weights), 0, []
    for w in weights:
        acc += w
        out.append(acc * 1000 // total)
    return tuple(out)


def _rate_table() -> np.ndarray:
    """Per mille of each home item, by [industry, size, item]."""
    table = np.zeros((len(_INDUSTRIES), 4, len(HOME_ITEMS)), dtype=np.uint64)
    for k, item in enumerate(HOME_ITEMS):
        factors = INDUSTRY_FACTORS.get(item, {})
        for a, industry in enumerate(_INDUSTRIES):
            f = factors.get(industry, 10)
            for b in range(4):
                table[a, b, k] = min(1000, HOME_RATES[item][b] * f // 10)
    return table


_RATES = _rate_table()
_SIZE_CUT = np.array([_cumulative(INDUSTRY_SIZE_MIX[i]) for i in _INDUSTRIES], dtype=np.uint64)


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@dataclass(frozen=True, slots=True)
class Enterprise:
    city: str
    index: int
    uscc: str
    home_node: str


class SyntheticData:
    """The synthetic region: who the enterprises are and what each node holds."""

    def __init__(self, topology: Topology, enterprises: int, seed: int = 2020) -> None:
        if enterprises < len(topology.cities):
            raise ValueError(
                f"need at least one enterprise per city ({len(topology.cities)}), got {enterprises}"
            )
        self.topology = topology
        self.total = enterprises
        self.seed = seed
        # Largest-remainder split of the total by share.
        raw = [(c, enterprises * c.share) for c in topology.cities]
        counts = {c.code: max(1, int(q)) for c, q in raw}
        rest = enterprises - sum(counts.values())
        for c, _ in sorted(raw, key=lambda cq: -(cq[1] - int(cq[1])))[: max(0, rest)]:
            counts[c.code] += 1
        self.counts = counts
        self._perm: dict[str, tuple[int, int]] = {}
        for c in topology.cities:
            d = hashlib.sha256(f"{seed}/{c.code}".encode()).digest()
            a = int.from_bytes(d[:8], "big") % SERIAL_LIMIT
            self._perm[c.code] = (
                a + 1 if a % 31 == 0 else a,
                int.from_bytes(d[8:16], "big") % SERIAL_LIMIT,
            )
        self._city_index = {c.code: i for i, c in enumerate(topology.cities)}
        self._industry_cut = {
            c.code: np.array(
                _cumulative(CITY_INDUSTRY_MIX.get(c.code, _DEFAULT_MIX)), dtype=np.uint64
            )
            for c in topology.cities
        }

    def _h(self, city: str, i: int, salt: int) -> int:
        return _mix((self.seed << 48) ^ (self._city_index[city] << 40) ^ (salt << 34) ^ i)

    def uscc(self, city: City, i: int) -> str:
        a, b = self._perm[city.code]
        return make_uscc(city.admin_code, (a * i + b) % SERIAL_LIMIT).code

    def enterprise(self, city_code: str, i: int) -> Enterprise:
        city = self.topology.city(city_code)
        if not 0 <= i < self.counts[city_code]:
            raise IndexError(f"{city_code} has {self.counts[city_code]} enterprises, no index {i}")
        return Enterprise(city_code, i, self.uscc(city, i), city.node_ids[i % city.nodes])

    def enterprises(self, city_code: str) -> Iterator[Enterprise]:
        for i in range(self.counts[city_code]):
            yield self.enterprise(city_code, i)

    def branch_node(self, city_code: str, i: int) -> str | None:
        """The node of the second city where enterprise (city, i) has a branch, if any."""
        h = self._h(city_code, i, 1)
        if h % 1000 >= BRANCH_PER_MILLE:
            return None
        others = [c for c in self.topology.cities if c.code != city_code]
        if not others:
            return None
        other = others[(h >> 10) % len(others)]
        return other.node_ids[(h >> 20) % other.nodes]

    def holders(self, city_code: str, i: int) -> list[str]:
        """The nodes that hold records on enterprise (city, i): home, and branch if it has any."""
        e = self.enterprise(city_code, i)
        b = self.branch_node(city_code, i)
        if b is not None and not any(
            self._h(city_code, i, BRANCH_SALT0 + n) % 1000 < per_mille
            for n, (_, per_mille) in enumerate(BRANCH_MIX)
        ):
            b = None  # a branch with no record of any item holds nothing on it
        return [e.home_node] + ([b] if b else [])

    def profile(self, city_code: str, i: int) -> tuple[str, str]:
        """Enterprise (city, i)'s industry and size class (micro, small, medium, large)."""
        ind, size = self._profile_v(city_code, np.array([self._h(city_code, i, 0)], np.uint64))
        return _INDUSTRIES[int(ind[0])], SIZES[int(size[0])]

    def _profile_v(self, city_code: str, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Industry and size indexes of the enterprises whose base hashes are ``h0``."""
        u = (h0 >> np.uint64(27)) % np.uint64(1000)
        ind = np.searchsorted(self._industry_cut[city_code], u, side="right")
        v = (h0 >> np.uint64(37)) % np.uint64(1000)
        size = (v[:, None] >= _SIZE_CUT[ind][:, :3]).sum(axis=1)
        return ind, size

    def node_enterprise_count(self, node_id: str) -> int:
        city = self.topology.city_of_node(node_id)
        k = city.node_ids.index(node_id)
        n = self.counts[city.code]
        return (n - k + city.nodes - 1) // city.nodes

    # --- records -----------------------------------------------------------
    def records_for_node(self, node_id: str) -> Iterator[RecordDraft | CorrectionDraft]:
        """Every record ``node_id`` holds, streamed: home enterprises, then branches.

        The per-enterprise hashes, profiles (industry, size) and which items each
        enterprise has are computed a chunk at a time with numpy (the same
        splitmix64 as :func:`_mix`, in wrapping 64-bit arithmetic), so a node's
        scan of the other cities for its branches costs a few array operations per
        million enterprises, and only the records that exist cost Python work.
        """
        city = self.topology.city_of_node(node_id)
        k = city.node_ids.index(node_id)
        n_home = self.counts[city.code]
        n_items = len(HOME_ITEMS)
        thousand = np.uint64(1000)
        for lo in range(k, n_home, _CHUNK * city.nodes):
            idx = np.arange(lo, min(n_home, lo + _CHUNK * city.nodes), city.nodes, dtype=np.uint64)
            h0v = self._hv(city.code, idx, 0)
            ind, size = self._profile_v(city.code, h0v)
            hk = np.stack([self._hv(city.code, idx, HOME_SALT0 + n) for n in range(n_items)], 1)
            rows, cols = np.nonzero((hk % thousand) < _RATES[ind, size])
            starts = np.searchsorted(rows, np.arange(len(idx) + 1)).tolist()
            hits, kinds = hk[rows, cols].tolist(), cols.tolist()
            h0, ind_l, size_l = h0v.tolist(), ind.tolist(), size.tolist()
            for j, i in enumerate(idx.tolist()):
                prof = (_INDUSTRIES[ind_l[j]], size_l[j], h0[j])
                uscc = self.uscc(city, i)
                yield self._registration(city, node_id, uscc, prof)
                for p in range(starts[j], starts[j + 1]):
                    yield from self._emit(city, node_id, uscc, HOME_ITEMS[kinds[p]], hits[p], prof)
        for other in self.topology.cities:
            if other.code == city.code:
                continue
            others = [c for c in self.topology.cities if c.code != other.code]
            pos = next(p for p, c in enumerate(others) if c.code == city.code)
            for lo in range(0, self.counts[other.code], _CHUNK):
                idx = np.arange(lo, min(self.counts[other.code], lo + _CHUNK), dtype=np.uint64)
                h = self._hv(other.code, idx, 1)
                mine = (
                    ((h % thousand) < np.uint64(BRANCH_PER_MILLE))
                    & (((h >> np.uint64(10)) % np.uint64(len(others))) == np.uint64(pos))
                    & (((h >> np.uint64(20)) % np.uint64(city.nodes)) == np.uint64(k))
                )
                sel = idx[mine]
                if not len(sel):
                    continue
                h0v = self._hv(other.code, sel, 0)
                ind, size = self._profile_v(other.code, h0v)
                hb = [
                    self._hv(other.code, sel, BRANCH_SALT0 + n).tolist()
                    for n in range(len(BRANCH_MIX))
                ]
                h0, ind_l, size_l = h0v.tolist(), ind.tolist(), size.tolist()
                for j, i in enumerate(sel.tolist()):
                    prof = (_INDUSTRIES[ind_l[j]], size_l[j], h0[j])
                    uscc = self.uscc(other, i)
                    for n, (kind, per_mille) in enumerate(BRANCH_MIX):
                        if hb[n][j] % 1000 < per_mille:
                            yield from self._emit(city, node_id, uscc, kind, hb[n][j], prof)

    def _hv(self, city: str, idx: np.ndarray, salt: int) -> np.ndarray:
        """:meth:`_h` over an array of enterprise indexes."""
        base = ((self.seed << 48) ^ (self._city_index[city] << 40) ^ (salt << 34)) & _MASK
        x = idx ^ np.uint64(base)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    def _registration(self, city: City, node_id: str, uscc: str, prof: _Profile) -> RecordDraft:
        industry, size, h = prof
        w = _WORDS
        established = _date(h, 1995)
        return RecordDraft(
            uscc,
            "registration",
            f"{node_id}:{uscc}:reg",
            f"{city.code}-amr",
            established,
            {
                "name": _name(city, h),
                "legal_representative": f"{_SURNAMES[(h >> 3) % 20]}{w[(h >> 7) % len(w)]}",
                "registered_capital_minor": _span(_CAPITAL[size], h >> 14) * 100,
                "industry": industry,
                "size": SIZES[size],
                "admin_code": city.admin_code,
                "status": "active" if (h >> 47) % 20 else "revoked",
                "established_on": established[:10],
            },
        )

    def _emit(
        self, city: City, node_id: str, uscc: str, kind: str, h: int, prof: _Profile
    ) -> Iterator[RecordDraft | CorrectionDraft]:
        """The record of item ``kind`` held at ``city``'s node, ``h`` its hash."""
        rid = f"{node_id}:{uscc}:{kind}"
        when = _date(h >> 3, 2016)
        sources = item_for(kind).sources
        key = sources[(h >> 50) % len(sources)]
        body = self._body(kind, city, h, prof, key)
        source = f"{city.code}-{key}"
        yield RecordDraft(uscc, kind, rid, source, when, body)
        if kind == "admin_penalty" and (h >> 40) % 1000 < CORRECTION_PER_MILLE:
            fixed_at = _date(h >> 9, 2021, 2022)
            resolved = dict(body, status="resolved", resolved_on=fixed_at[:10])
            yield CorrectionDraft(uscc, f"{rid}:c1", rid, "resolved", source, fixed_at, resolved)

    def _body(self, kind: str, city: City, h: int, prof: _Profile, key: str) -> _Body:
        return _BODIES[kind](self, city, h, prof, key)


# --- bodies -------------------------------------------------------------------------------
# prof = (industry, size index, the enterprise's base hash); h = the record's own hash.
_Profile = tuple[str, int, int]
_Body = dict[str, object]
# yuan ranges by size class (micro, small, medium, large)
_CAPITAL = ((10_000, 1_000_000), (1_000_000, 10_000_000), (10**7, 10**8), (10**8, 2 * 10**9))
_REVENUE = (
    (100_000, 3_000_000),
    (3 * 10**6, 2 * 10**7),
    (2 * 10**7, 4 * 10**8),
    (4 * 10**8, 5 * 10**9),
)
_STAFF = ((1, 9), (10, 99), (100, 999), (1000, 9999))
_ROLES = ("chair", "director", "supervisor", "general_manager", "cfo")


def _date(h: int, start_year: int = 2012, end_year: int = 2021) -> str:
    year = start_year + h % max(1, end_year - start_year)
    month, day = 1 + (h >> 8) % 12, 1 + (h >> 12) % 28
    hour, minute = (h >> 17) % 24, (h >> 22) % 60
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def _name(city: City, h: int) -> str:
    w = _WORDS
    trade = ("科技", "实业", "贸易", "制造")[(h >> 10) % 4]
    return f"{city.name_zh}{w[h % len(w)]}{w[(h >> 5) % len(w)]}{trade}有限公司"


def _span(r: tuple[int, int], h: int) -> int:
    return r[0] + h % (r[1] - r[0] + 1)


def _person(h: int) -> str:
    return f"{_SURNAMES[h % 20]}{_WORDS[(h >> 5) % len(_WORDS)]}{_WORDS[(h >> 10) % len(_WORDS)]}"


def _fin(prof: _Profile) -> dict[str, int]:
    """The enterprise's 2020 statements, shared by balance sheet, income statement and ratios."""
    _, size, h0 = prof
    f = _mix(h0 ^ 0xF1A2)
    revenue = _span(_REVENUE[size], f) * 100
    cost = revenue * (60 + (f >> 20) % 36) // 100
    op = revenue - cost - revenue * (2 + (f >> 26) % 9) // 100
    net = op * 3 // 4 if op > 0 else op
    assets = revenue * (50 + (f >> 32) % 151) // 100
    liabilities = assets * (20 + (f >> 40) % 71) // 100
    return {
        "revenue": revenue,
        "cost": cost,
        "op": op,
        "net": net,
        "assets": assets,
        "liabilities": liabilities,
        "current_assets": assets * (30 + (f >> 48) % 41) // 100,
        "current_liabilities": max(1, liabilities * (40 + (f >> 54) % 51) // 100),
    }


def _b_payments(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    staff = _span(_STAFF[prof[1]], h >> 8)
    per_head = 150_000 if key == "hrss" else 60_000
    return {
        "period": f"2021-{1 + (h >> 20) % 9:02d}",
        "employees": staff,
        "paid_minor": staff * per_head,
        "arrears_minor": 0 if (h >> 30) % 10 else staff * per_head // 8,
    }


def _b_utility(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    heavy = 4 if prof[0] in ("manufacturing", "chemicals", "textiles") else 1
    scale = (1, 20, 400, 8000)[prof[1]] * heavy
    qty = scale * (200 + (h >> 8) % 2000)
    unit = 450 if key == "water" else 80  # fen per tonne, per kWh
    out: dict[str, object] = {("tonnes" if key == "water" else "kwh"): qty}
    overdue = 0 if (h >> 30) % 25 else 1 + (h >> 35) % 6
    out.update(
        year=2020,
        paid_minor=qty * unit,
        arrears_minor=overdue * qty * unit // 12,
        overdue_months=overdue,
    )
    return out


def _b_registration_change(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    field = (
        "address",
        "legal_representative",
        "registered_capital",
        "business_scope",
        "shareholders",
        "name",
    )[(h >> 8) % 6]
    before, after = _person(h >> 12), _person(h >> 24)
    if field == "registered_capital":
        before, after = (
            f"{_span(_CAPITAL[prof[1]], h >> 12)}元",
            f"{_span(_CAPITAL[prof[1]], h >> 24)}元",
        )
    elif field in ("address", "business_scope", "name"):
        before, after = (
            f"{city.name_zh}{_WORDS[(h >> 12) % 26]}路{(h >> 16) % 999 + 1}号",
            (f"{city.name_zh}{_WORDS[(h >> 24) % 26]}路{(h >> 28) % 999 + 1}号"),
        )
    return {
        "changed_on": _date(h >> 3, 2016)[:10],
        "field": field,
        "before": before,
        "after": after,
    }


def _b_shareholders(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    n = 1 + (h >> 8) % (2, 4, 6, 8)[prof[1]]
    capital = _span(_CAPITAL[prof[1]], prof[2] >> 14) * 100
    shares = [1 + (h >> (12 + 3 * k)) % 8 for k in range(n)]
    total = sum(shares)
    out = []
    for k, s in enumerate(shares):
        corporate = prof[1] >= 2 and k == 0
        sub = capital * s // total
        out.append(
            {
                "name": f"{city.name_zh}{_WORDS[(h >> (k + 3)) % 26]}投资有限公司"
                if corporate
                else _person(h >> (4 * k)),
                "kind": "enterprise" if corporate else "natural_person",
                "subscribed_minor": sub,
                "paid_in_minor": sub if (h >> (30 + k)) % 3 else sub // 2,
                "share_bp": 10_000 * s // total,
            }
        )
    return {"as_of": "2021-06-30", "shareholders": out}


def _b_executives(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    n = (2, 3, 5, 7)[prof[1]]
    members = [{"name": _person(h >> (3 * k)), "role": _ROLES[min(k, 4)]} for k in range(n)]
    return {"as_of": "2021-06-30", "members": members}


def _b_branches(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    n = 1 + (h >> 8) % (1, 2, 4, 12)[prof[1]]
    return {
        "branches": [
            {
                "name": f"{_name(city, prof[2])}{_WORDS[(h >> k) % 26]}分公司",
                "admin_code": city.admin_code,
                "established_on": _date(h >> (2 * k), 2005)[:10],
            }
            for k in range(n)
        ]
    }


def _b_customs(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    scale = _span(_REVENUE[prof[1]], h >> 8) * 100
    return {
        "year": 2020,
        "imports_minor": scale * ((h >> 20) % 40) // 100,
        "exports_minor": scale * (10 + (h >> 28) % 60) // 100,
        "declarations": (3, 40, 400, 4000)[prof[1]] + (h >> 36) % 100,
        "customs_credit": (
            "general_certified",
            "registered",
            "registered",
            "advanced_certified",
            "registered",
            "dishonest",
        )[(h >> 44) % 6 if prof[1] >= 2 else 1 + (h >> 44) % 2],
    }


_QUALIFICATIONS = {
    "construction": ("建筑业企业资质证书", "住房和城乡建设局"),
    "chemicals": ("危险化学品经营许可证", "应急管理局"),
    "catering": ("食品经营许可证", "市场监督管理局"),
    "logistics": ("道路运输经营许可证", "交通运输局"),
}


def _b_qualification(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    name, issuer = _QUALIFICATIONS.get(prof[0], ("安全生产许可证", "应急管理局"))
    return {
        "name": name,
        "licence_no": f"{city.code.upper()}{h % 10**8:08d}",
        "issuer": f"{city.name_zh}{issuer}",
        "valid_until": _date(h >> 8, 2021, 2027)[:10],
        "status": "valid" if (h >> 40) % 10 else "expired",
    }


def _b_balance(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    f = _fin(prof)
    return {
        "year": 2020,
        "total_assets_minor": f["assets"],
        "total_liabilities_minor": f["liabilities"],
        "equity_minor": f["assets"] - f["liabilities"],
        "current_assets_minor": f["current_assets"],
        "current_liabilities_minor": f["current_liabilities"],
    }


def _b_income(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    f = _fin(prof)
    return {
        "year": 2020,
        "revenue_minor": f["revenue"],
        "operating_cost_minor": f["cost"],
        "operating_profit_minor": f["op"],
        "net_profit_minor": f["net"],
    }


def _b_ratios(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    f = _fin(prof)
    equity = max(1, f["assets"] - f["liabilities"])
    return {
        "year": 2020,
        "debt_to_assets_bp": f["liabilities"] * 10_000 // max(1, f["assets"]),
        "current_ratio_bp": f["current_assets"] * 10_000 // f["current_liabilities"],
        "net_margin_bp": f["net"] * 10_000 // max(1, f["revenue"]),
        "return_on_equity_bp": f["net"] * 10_000 // equity,
    }


_OPINIONS = ("unqualified", "qualified", "adverse", "disclaimer")


def _b_audit(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    o = (h >> 8) % 100
    return {
        "year": 2020,
        "auditor": f"{city.name_zh}{_WORDS[(h >> 16) % 26]}{_WORDS[(h >> 21) % 26]}会计师事务所",
        "opinion": _OPINIONS[sum(o >= c for c in (90, 97, 99))],
        "report_no": f"审字[2021]{h % 10**5:05d}号",
    }


def _b_tax_payment(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    f = _fin(prof)
    vat = f["revenue"] * (1 + (h >> 8) % 6) // 100
    income = max(0, f["net"]) // 4
    other = f["revenue"] * ((h >> 16) % 5) // 1000
    return {
        "year": 2020,
        "vat_minor": vat,
        "income_tax_minor": income,
        "other_minor": other,
        "total_minor": vat + income + other,
    }


# Tax credit ratings: better for larger enterprises (A/B/M/C/D per mille by size).
_RATING_CUT = (
    (150, 600, 900, 970),
    (250, 750, 930, 985),
    (400, 850, 960, 990),
    (550, 920, 980, 995),
)


def _b_tax_rating(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    u, cut = (h >> 8) % 1000, _RATING_CUT[prof[1]]
    rating = _TAX[next((k for k, c in enumerate(cut) if u < c), 4)]
    return {"year": 2016 + h % 5, "rating": rating, "authority": f"{city.name_zh}税务局"}


def _b_tax_arrears(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    return {
        "tax": ("vat", "enterprise_income_tax", "stamp_duty", "property_tax")[(h >> 8) % 4],
        "amount_minor": _span(_CAPITAL[prof[1]], h >> 12) * 5,
        "since": _date(h >> 20, 2018)[:10],
        "status": "outstanding" if (h >> 40) % 3 else "cleared",
    }


_PENALTY = {
    "amr": ("市场监督管理局", ("labelling", "safety", "unlicensed-operation")),
    "tax": ("税务局", ("tax-filing", "invoices")),
    "credit": ("生态环境局", ("environment", "emissions")),
}


def _b_penalty(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    authority, reasons = _PENALTY[key]
    return {
        "authority": f"{city.name_zh}{authority}",
        "decision_no": f"{city.code.upper()}-{h % 10**6:06d}",
        "amount_minor": (1 + (h >> 8) % 500) * 10_000 * (1, 2, 5, 10)[prof[1]],
        "reason": reasons[(h >> 20) % len(reasons)],
        "status": "in_force",
    }


def _b_licence(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    matter = ("排污许可", "建设工程规划许可", "食品经营许可", "广告发布登记")[(h >> 8) % 4]
    granted = _date(h >> 12, 2016)[:10]
    return {
        "authority": f"{city.name_zh}行政审批局",
        "licence_no": f"{city.code.upper()}XK{h % 10**7:07d}",
        "matter": matter,
        "granted_on": granted,
        "valid_until": f"{int(granted[:4]) + 5}{granted[4:]}",
    }


def _b_red(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    if key == "tax":
        return {
            "list": "A-level taxpayer",
            "year": 2016 + h % 5,
            "authority": f"{city.name_zh}税务局",
        }
    authority = f"{city.name_zh}市场监督管理局"
    return {"list": "守合同重信用企业", "year": 2016 + h % 5, "authority": authority}


def _b_black(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    if key == "amr":
        reason = ("annual report not filed", "unreachable at registered address")[(h >> 8) % 2]
        return {"list": "abnormal operations", "reason": reason, "since": _date(h, 2017)[:10]}
    since = _date(h, 2017)[:10]
    return {"list": "serious dishonesty", "reason": "unpaid judgment", "since": since}


def _court(city: City) -> str:
    return _COURTS.get(city.code, f"{city.name_zh}中级人民法院")


def _b_judgement(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    cause = ("买卖合同纠纷", "借款合同纠纷", "劳动争议", "建设工程施工合同纠纷", "知识产权纠纷")
    return {
        "court": _court(city),
        "case_no": f"({2016 + h % 5}){city.code.upper()}民初{h % 99999}号",
        "cause": cause[(h >> 8) % 5],
        "role": ("plaintiff", "defendant", "defendant", "third_party")[(h >> 12) % 4],
        "amount_minor": (1 + (h >> 16) % 9000) * 10_000 * (1, 2, 5, 20)[prof[1]],
        "decided_on": _date(h >> 20, 2016)[:10],
    }


def _b_enforcement(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    return {
        "court": _court(city),
        "case_no": f"({2016 + h % 6}){city.code.upper()}执{h % 99999}号",
        "amount_minor": (1 + (h >> 8) % 9000) * 100_000,
        "status": ("pending", "concluded")[(h >> 30) % 2],
    }


def _b_dishonest(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    return {
        "court": _court(city),
        "case_no": f"({2017 + h % 4}){city.code.upper()}执{h % 99999}号",
        "obligation": ("pay the judgment debt", "deliver goods", "pay wages")[(h >> 8) % 3],
        "listed_on": _date(h >> 12, 2017)[:10],
        "status": "listed" if (h >> 40) % 4 else "removed",
    }


def _b_honour(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    title = ("高新技术企业", "专精特新中小企业", "守合同重信用企业", "纳税信用A级")[(h >> 8) % 4]
    return {"title": title, "grantor": f"{city.name_zh}人民政府", "year": 2016 + h % 5}


def _b_commitment(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    return {
        "matter": ("行政许可告知承诺", "信用修复承诺", "证明事项告知承诺")[(h >> 8) % 3],
        "authority": f"{city.name_zh}发展和改革委员会",
        "committed_on": _date(h >> 12, 2019)[:10],
        "status": "kept" if (h >> 40) % 20 else "breached",
    }


def _b_secured(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    kinds = (
        ("receivables_pledge", "finance_lease")
        if key == "pboc"
        else ("chattel_mortgage", "equity_pledge")
    )
    return {
        "kind": kinds[(h >> 8) % 2],
        "registration_no": f"{h % 10**12:012d}",
        "secured_party": f"{city.name_zh}{('工商', '农业', '建设', '招商')[(h >> 12) % 4]}银行",
        "amount_minor": _span(_REVENUE[prof[1]], h >> 16) * 30,
        "registered_on": _date(h >> 20, 2017)[:10],
        "status": "active" if (h >> 40) % 3 else "released",
    }


def _b_ip(d: SyntheticData, city: City, h: int, prof: _Profile, key: str) -> _Body:
    kind = ("trademark", "utility_model", "invention_patent", "software_copyright", "design_patent")
    k = kind[(h >> 8) % 5] if prof[0] != "software" else "software_copyright"
    return {
        "kind": k,
        "count": 1 + (h >> 16) % (3, 10, 60, 400)[prof[1]],
        "latest_granted_on": _date(h >> 24, 2015)[:10],
    }


_BODIES: dict[str, Callable[[SyntheticData, City, int, _Profile, str], _Body]] = {
    "shareholders": _b_shareholders,
    "executives": _b_executives,
    "registration_change": _b_registration_change,
    "branches": _b_branches,
    "social_insurance": _b_payments,
    "housing_fund": _b_payments,
    "water_payment": _b_utility,
    "electricity_payment": _b_utility,
    "customs_trade": _b_customs,
    "qualification": _b_qualification,
    "balance_sheet": _b_balance,
    "income_statement": _b_income,
    "financial_ratios": _b_ratios,
    "audit_report": _b_audit,
    "tax_payment": _b_tax_payment,
    "tax_rating": _b_tax_rating,
    "tax_arrears": _b_tax_arrears,
    "admin_penalty": _b_penalty,
    "admin_licence": _b_licence,
    "red_list": _b_red,
    "black_list": _b_black,
    "judgement": _b_judgement,
    "judicial_enforcement": _b_enforcement,
    "dishonest_debtor": _b_dishonest,
    "honour": _b_honour,
    "credit_commitment": _b_commitment,
    "secured_financing": _b_secured,
    "intellectual_property": _b_ip,
}
