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
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ledger.log import CorrectionDraft, RecordDraft
from ledger.uscc import SERIAL_LIMIT, make_uscc
from scenarios.model.topology import City, Topology

__all__ = ["Enterprise", "SyntheticData"]

_MASK = (1 << 64) - 1
_CHUNK = 1 << 16  # enterprises hashed per numpy call

_WORDS = "华信达通盛泰恒瑞鑫安宏远鼎丰裕德兴隆海创联科源嘉润昌"
_INDUSTRIES = (
    "manufacturing",
    "wholesale",
    "software",
    "logistics",
    "construction",
    "textiles",
    "chemicals",
    "catering",
)
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

# Probability (per mille) of each record kind for an enterprise at its home node.
HOME_MIX = (
    ("tax_rating", 650),
    ("social_insurance", 550),
    ("housing_fund", 300),
    ("admin_penalty", 50),
    ("judicial_enforcement", 25),
    ("red_list", 20),
    ("black_list", 8),
)
BRANCH_PER_MILLE = 120  # enterprises with activity in a second city
# Probability (per mille) of each record kind at the node of that second city.
BRANCH_MIX = (
    ("tax_rating", 700),
    ("social_insurance", 800),
    ("admin_penalty", 250),
    ("judicial_enforcement", 80),
)
CORRECTION_PER_MILLE = 350  # penalties later resolved or amended


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
        e = self.enterprise(city_code, i)
        b = self.branch_node(city_code, i)
        return [e.home_node] + ([b] if b else [])

    def node_enterprise_count(self, node_id: str) -> int:
        city = self.topology.city_of_node(node_id)
        k = city.node_ids.index(node_id)
        n = self.counts[city.code]
        return (n - k + city.nodes - 1) // city.nodes

    # --- records -----------------------------------------------------------
    def records_for_node(self, node_id: str) -> Iterator[RecordDraft | CorrectionDraft]:
        """Every record ``node_id`` holds, streamed: home enterprises, then branches.

        The per-enterprise hashes are computed a chunk at a time with numpy
        (the same splitmix64 as :func:`_mix`, in wrapping 64-bit arithmetic), so
        a node's scan of the other cities for its branches costs a few array
        operations per million enterprises instead of a Python call each.
        """
        city = self.topology.city_of_node(node_id)
        k = city.node_ids.index(node_id)
        n_home = self.counts[city.code]
        mix_salts = [2 + 4 * m for m in range(len(HOME_MIX))]
        for lo in range(k, n_home, _CHUNK * city.nodes):
            idx = np.arange(lo, min(n_home, lo + _CHUNK * city.nodes), city.nodes, dtype=np.uint64)
            h0 = self._hv(city.code, idx, 0).tolist()
            hk = [self._hv(city.code, idx, salt).tolist() for salt in mix_salts]
            for j, i in enumerate(idx.tolist()):
                yield from self._home_records(city, i, node_id, h0[j], [col[j] for col in hk])
        branch_mix_salts = [3 + 4 * m for m in range(len(BRANCH_MIX))]
        for other in self.topology.cities:
            if other.code == city.code:
                continue
            others = [c for c in self.topology.cities if c.code != other.code]
            pos = next(p for p, c in enumerate(others) if c.code == city.code)
            for lo in range(0, self.counts[other.code], _CHUNK):
                idx = np.arange(lo, min(self.counts[other.code], lo + _CHUNK), dtype=np.uint64)
                h = self._hv(other.code, idx, 1)
                mine = (
                    ((h % np.uint64(1000)) < np.uint64(BRANCH_PER_MILLE))
                    & (((h >> np.uint64(10)) % np.uint64(len(others))) == np.uint64(pos))
                    & (((h >> np.uint64(20)) % np.uint64(city.nodes)) == np.uint64(k))
                )
                sel = idx[mine]
                if not len(sel):
                    continue
                hk = [self._hv(other.code, sel, salt).tolist() for salt in branch_mix_salts]
                for j, i in enumerate(sel.tolist()):
                    yield from self._branch_records(other, i, node_id, city, [col[j] for col in hk])

    def _hv(self, city: str, idx: np.ndarray, salt: int) -> np.ndarray:
        """:meth:`_h` over an array of enterprise indexes."""
        base = ((self.seed << 48) ^ (self._city_index[city] << 40) ^ (salt << 34)) & _MASK
        x = idx ^ np.uint64(base)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    def _date(self, h: int, start_year: int = 2012) -> str:
        year = start_year + h % max(1, 2021 - start_year)
        month, day = 1 + (h >> 8) % 12, 1 + (h >> 12) % 28
        hour, minute = (h >> 17) % 24, (h >> 22) % 60
        return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"

    def _name(self, city: City, h: int) -> str:
        w = _WORDS
        trade = ("科技", "实业", "贸易", "制造")[(h >> 10) % 4]
        return f"{city.name_zh}{w[h % len(w)]}{w[(h >> 5) % len(w)]}{trade}有限公司"

    def _home_records(
        self, city: City, i: int, node_id: str, h: int, hk: list[int]
    ) -> Iterator[RecordDraft | CorrectionDraft]:
        uscc = self.uscc(city, i)
        src = f"{city.code}-amr"
        yield RecordDraft(
            uscc,
            "registration",
            f"{node_id}:{uscc}:reg",
            src,
            self._date(h, 1995),
            {
                "name": self._name(city, h),
                "legal_representative": (
                    f"{_WORDS[(h >> 3) % len(_WORDS)]}{_WORDS[(h >> 7) % len(_WORDS)]}"
                ),
                "registered_capital_minor": (1 + (h >> 14) % 5000) * 1_000_000,
                "industry": _INDUSTRIES[(h >> 27) % len(_INDUSTRIES)],
                "admin_code": city.admin_code,
                "status": "active" if (h >> 33) % 20 else "revoked",
            },
        )
        yield from self._kinds(city, node_id, uscc, HOME_MIX, hk)

    def _branch_records(
        self, home: City, i: int, node_id: str, where: City, hk: list[int]
    ) -> Iterator[RecordDraft | CorrectionDraft]:
        yield from self._kinds(where, node_id, self.uscc(home, i), BRANCH_MIX, hk)

    def _kinds(
        self, city: City, node_id: str, uscc: str, mix: tuple[tuple[str, int], ...], hk: list[int]
    ) -> Iterator[RecordDraft | CorrectionDraft]:
        """The records of ``mix`` an enterprise has; ``hk[n]`` is its hash for kind ``n``."""
        for n, (kind, per_mille) in enumerate(mix):
            h = hk[n]
            if h % 1000 >= per_mille:
                continue
            rid = f"{node_id}:{uscc}:{kind}"
            when = self._date(h >> 3, 2016)
            body = self._body(kind, city, h)
            source = f"{city.code}-{_SOURCES[kind]}"
            yield RecordDraft(uscc, kind, rid, source, when, body)
            if kind == "admin_penalty" and (h >> 40) % 1000 < CORRECTION_PER_MILLE:
                fixed_at = self._date(h >> 9, 2021)
                resolved = dict(body, status="resolved", resolved_on=fixed_at[:10])
                yield CorrectionDraft(
                    uscc, f"{rid}:c1", rid, "resolved", source, fixed_at, resolved
                )

    def _body(self, kind: str, city: City, h: int) -> dict[str, object]:
        if kind == "tax_rating":
            return {
                "year": 2016 + h % 6,
                "rating": _TAX[(h >> 8) % 5],
                "authority": f"{city.name_zh}税务局",
            }
        if kind in ("social_insurance", "housing_fund"):
            staff = 3 + (h >> 8) % 400
            return {
                "period": f"2021-{1 + (h >> 20) % 9:02d}",
                "employees": staff,
                "paid_minor": staff * 150_000,
                "arrears_minor": 0 if (h >> 30) % 10 else staff * 20_000,
            }
        if kind == "admin_penalty":
            return {
                "authority": f"{city.name_zh}市场监督管理局",
                "decision_no": f"{city.code.upper()}-{h % 10**6:06d}",
                "amount_minor": (1 + (h >> 8) % 500) * 10_000,
                "reason": ("labelling", "environment", "safety", "tax-filing")[(h >> 20) % 4],
                "status": "in_force",
            }
        if kind == "judicial_enforcement":
            return {
                "court": _COURTS.get(city.code, f"{city.name_zh}中级人民法院"),
                "case_no": f"({2016 + h % 6}){city.code.upper()}执{h % 99999}号",
                "amount_minor": (1 + (h >> 8) % 9000) * 100_000,
                "status": ("pending", "concluded")[(h >> 30) % 2],
            }
        if kind == "red_list":
            return {"list": "A-level taxpayer", "year": 2016 + h % 6}
        return {
            "list": "serious dishonesty",
            "reason": "unpaid judgment",
            "since": self._date(h, 2017)[:10],
        }


_SOURCES = {
    "tax_rating": "tax",
    "social_insurance": "hrss",
    "housing_fund": "hpf",
    "admin_penalty": "amr",
    "judicial_enforcement": "court",
    "red_list": "credit",
    "black_list": "credit",
    "registration": "amr",
}
