"""Field checks of a scenario file.

Each takes a value and its path, reports problems with their lines, and returns the value
or None.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import PURPOSES, RECORD_TYPES, InvalidUsccError, parse_uscc
from scenarios.model.topology import Topology
from scenarios.scenario.marks import MarkedDoc, Path_

_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
)


_OFFSET = re.compile(r"([+-])([0-9]{1,6})([smhd])")


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:{}-]{0,100}")


ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


_NODE = re.compile(r"[a-z0-9]+-[0-9]+")


# --- field checks ------------------------------------------------------------------------
# A checker takes (value, path, doc, ctx) and returns the normalised value or None after
# reporting a problem. ``ctx`` holds what earlier parts of the file defined.
Checker = Callable[[Any, Path_, MarkedDoc, "SpecContext"], Any]


@dataclass(frozen=True, slots=True)
class F:
    """One field of a mapping: its checker, whether it is required, its default, its description."""

    check: Checker
    required: bool = False
    default: Any = None
    docs: str = ""


def typename(v: Any) -> str:
    if v is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(v), type(v).__name__)


def check_mapping(
    value: Any,
    path: Path_,
    doc: MarkedDoc,
    ctx: SpecContext,
    fields: Mapping[str, F],
    what: str = "",
) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        doc.error(path, f"must be a mapping{f' ({what})' if what else ''}, got {typename(value)}")
        return None
    out: dict[str, Any] = {}
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(fields)}"
            )
            doc.error(path + (key,), f"unknown field{hint}", key=True)
    for name, f in fields.items():
        if name not in value or value[name] is None:
            if f.required:
                doc.error(
                    path, f"missing required field {name!r}" + (f" ({f.docs})" if f.docs else "")
                )
            elif f.default is not None:
                out[name] = f.default
            continue
        checked = f.check(value[name], path + (name,), doc, ctx)
        if checked is not None:
            out[name] = checked
    # Keep the order the file gives (defaults last): reports list expectations as written.
    return {k: out[k] for k in dict.fromkeys([*value, *fields]) if k in out}


def c_str(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        doc.error(path, f"must be text, got {typename(value)}")
        return None
    text = str(value)
    if not text.strip() or len(text) > 2000:
        doc.error(path, "must be non-empty text of at most 2000 characters")
        return None
    return text


def c_id(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is not None and not _ID.fullmatch(text):
        doc.error(
            path,
            "must be letters, digits and . _ : - (at most 100, starting with a letter or digit), "
            f"got {text!r}",
        )
        return None
    return text


def c_new_record_id(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    """The id of a record a step writes: no placeholders (the runner appends ``.r<run tag>``)."""
    text = c_id(value, path, doc, ctx)
    if text is not None and ("{" in text or "}" in text):
        doc.error(path, f"a new record's id cannot hold placeholders, got {text!r}")
        return None
    return text


def c_alias(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is not None and not ALIAS_RE.fullmatch(text):
        doc.error(path, f"must be a name: a letter, then letters, digits, '_' or '-', got {text!r}")
        return None
    return text


def c_int(lo: int | None = None, hi: int | None = None) -> Checker:
    def check(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            doc.error(path, f"must be an integer, got {typename(value)}")
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            doc.error(path, f"must be {rng}, got {value}")
            return None
        return value

    return check


def c_number(lo: float = 0.0, hi: float | None = None) -> Checker:
    def check(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            doc.error(path, f"must be a number, got {typename(value)}")
            return None
        if value < lo or (hi is not None and value > hi):
            doc.error(
                path,
                f"must be >= {lo}" + (f" and <= {hi}" if hi is not None else "") + f", got {value}",
            )
            return None
        return float(value)

    return check


def c_bool(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> bool | None:
    if not isinstance(value, bool):
        doc.error(path, f"must be true or false, got {typename(value)}")
        return None
    return value


def c_choice(*choices: str) -> Checker:
    def check(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
        if not isinstance(value, str) or value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            doc.error(path, f"must be one of {', '.join(choices)}, got {value!r}{hint}")
            return None
        return value

    return check


def c_list(item: Checker, min_items: int = 1, unique: bool = True) -> Checker:
    def check(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> list[Any] | None:
        if isinstance(value, str | int) and not isinstance(value, bool) and min_items <= 1:
            value = [value]  # a single item may be written without brackets
        if not isinstance(value, list):
            doc.error(path, f"must be a list, got {typename(value)}")
            return None
        if len(value) < min_items:
            doc.error(path, f"must list at least {min_items} item{'s' if min_items != 1 else ''}")
            return None
        out = []
        bad = False
        for i, v in enumerate(value):
            c = item(v, path + (i,), doc, ctx)
            bad = bad or c is None
            out.append(c)
        if bad:
            return None
        if unique:
            seen = [repr(x) for x in out]
            dups = sorted({s for s in seen if seen.count(s) > 1})
            if dups:
                doc.error(path, f"lists {', '.join(dups)} more than once")
                return None
        return out

    return check


def c_body(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    """A record body: a JSON object without floats (money is integer minor units)."""
    if not isinstance(value, dict):
        doc.error(path, f"must be a mapping (the record's JSON body), got {typename(value)}")
        return None

    def walk(v: Any, p: Path_) -> bool:
        if isinstance(v, float):
            doc.error(
                p, f"floats are not allowed in record bodies (use integer minor units), got {v}"
            )
            return False
        if isinstance(v, dict):
            return all([walk(x, p + (k,)) for k, x in v.items()])
        if isinstance(v, list):
            return all([walk(x, p + (i,)) for i, x in enumerate(v)])
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53 - 1:
            doc.error(p, f"integers in record bodies must fit in 53 bits, got {v}")
            return False
        return True

    return value if walk(value, path) else None


def parse_time_offset(text: str) -> tuple[str, int] | None:
    """``now`` → ("offset", 0); ``-30d`` → ("offset", -2592000); RFC 3339 → ("time", 0); else None."""
    if text == "now":
        return "offset", 0
    m = _OFFSET.fullmatch(text)
    if m:
        n = int(m.group(2)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(3)]
        return "offset", -n if m.group(1) == "-" else n
    if _TIME.fullmatch(text):
        return "time", 0
    return None


def c_time(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    if not isinstance(value, str) or parse_time_offset(value) is None:
        doc.error(
            path,
            "must be 'now', an offset like -30d, +365d, -2h, +10m, or a UTC time "
            f"like 2021-10-31T08:00:00Z, got {value!r}",
        )
        return None
    return value


def c_purpose(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    got = c_choice(*PURPOSES)(value, path, doc, ctx)
    return None if got is None else str(got)


def c_record_type(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    got = c_choice(*RECORD_TYPES)(value, path, doc, ctx)
    return None if got is None else str(got)


# --- what the file defines, for reference checks --------------------------------------------
@dataclass
class SpecContext:
    topology: Topology | None = None
    institutions: dict[str, tuple[str, str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # id → (city, node, purposes)
    plan_known: bool = False  # whether the consortium's own institution ids are known
    enterprises: dict[str, Any] = field(default_factory=dict)
    auths: dict[str, int] = field(default_factory=dict)  # alias → step index defining it
    queries: dict[str, int] = field(default_factory=dict)
    objections: dict[str, int] = field(default_factory=dict)  # alias → step index filing it
    records: dict[str, str] = field(default_factory=dict)  # logical record id → enterprise name
    step_ids: set[str] = field(default_factory=set)
    step_index: int = 0

    def nodes(self) -> tuple[str, ...]:
        return self.topology.node_ids if self.topology else ()

    def cities(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.topology.cities) if self.topology else ()


def c_node(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if ctx.topology is None:
        if not _NODE.fullmatch(text):
            doc.error(path, f"must be a node id like hz-1, got {text!r}")
            return None
        return text
    if text not in ctx.nodes():
        close = difflib.get_close_matches(text, ctx.nodes(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        doc.error(
            path,
            f"no node {text!r} in topology {ctx.topology.name}; nodes are {', '.join(ctx.nodes())}{hint}",
        )
        return None
    return text


def c_city(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if ctx.topology is not None and text not in ctx.cities():
        doc.error(
            path,
            f"no city {text!r} in topology {ctx.topology.name}; cities are {', '.join(ctx.cities())}",
        )
        return None
    return text


def c_node_or_city(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if ctx.topology is not None and text not in ctx.nodes() and text not in ctx.cities():
        doc.error(
            path, f"{text!r} is neither a node nor a city code of topology {ctx.topology.name}"
        )
        return None
    return text


def c_enterprise(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if text in ctx.enterprises:
        return text
    if len(text) == 18 and text.upper() == text:
        try:
            parse_uscc(text)
            return text
        except InvalidUsccError as exc:
            doc.error(path, f"{text!r} is not a valid USCC: {exc}")
            return None
    names = list(ctx.enterprises)
    close = difflib.get_close_matches(text, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    doc.error(
        path,
        f"unknown enterprise {text!r}: name one under enterprises.named "
        f"({', '.join(names) or 'none defined'}) or give an 18-character USCC{hint}",
    )
    return None


def c_institution(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_id(value, path, doc, ctx)
    if text is None:
        return None
    if ctx.plan_known and text not in ctx.institutions:
        close = difflib.get_close_matches(text, list(ctx.institutions), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        doc.error(
            path,
            f"unknown institution {text!r}: the topology's institutions are "
            f"{_sample(ctx.institutions)}; declare others under institutions or register them first{hint}",
        )
        return None
    return text


def _sample(ids: Mapping[str, Any]) -> str:
    keys = list(ids)
    return ", ".join(keys[:4]) + (f", … ({len(keys)} in all)" if len(keys) > 4 else "")


def c_auth_ref(
    value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext
) -> str | dict[str, str] | None:
    if isinstance(value, dict):
        got = check_mapping(
            value, path, doc, ctx, {"id": F(c_id, True, docs="a literal authorization id")}
        )
        return {"id": got["id"]} if got and "id" in got else None
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if text in ("auto", "none"):
        return text
    if text not in ctx.auths:
        doc.error(
            path,
            f"authorization {text!r} is not defined by an earlier authorize step "
            f"(defined: {', '.join(ctx.auths) or 'none'}); use 'auto', 'none' or {{id: literal}}",
        )
        return None
    return text


def c_query_ref(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if text not in ctx.queries:
        doc.error(
            path,
            f"query {text!r} is not defined by an earlier query step (defined: "
            f"{', '.join(ctx.queries) or 'none'})",
        )
        return None
    return text


def c_record_ref(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    """A record id: a logical id defined by an earlier ingest/correct step, or a literal id
    (placeholders ``{uscc}`` and ``{node}`` are filled in by the runner)."""
    return c_id(value, path, doc, ctx)


def c_nodes_or_all(
    value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext
) -> list[str] | str | None:
    if value == "all":
        return "all"
    got = c_list(c_node, min_items=0)(value, path, doc, ctx)
    return None if got is None else [str(n) for n in got]
