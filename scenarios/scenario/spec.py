"""Scenario files: YAML → validated :class:`Scenario`, with errors that name the line and the field.

A scenario is one YAML mapping::

    name: post-loan-monitoring            # required
    description: ...                      # optional
    topology: launch-2020                 # a preset, or inline {name, cities: [...], institutions}
    enterprises:                          # synthetic data seeded when the runner starts the network
      count: 3000
      seed: 2020
      named:                              # names the steps use instead of raw USCCs
        borrower: {city: hz, new: true}   # a fresh enterprise of Hangzhou (new USCC each run)
        branchy: {city: sh, pick: 0, min_cities: 2}   # a synthetic one with records in 2+ cities
        third: {city: nj, index: 17}      # synthetic enterprise (nj, 17)
        literal: {uscc: 91330100...}      # any valid USCC
    institutions:                         # optional extra institutions, registered at setup
      - {id: bank-hz-900, city: hz, node: hz-2, purposes: [post_loan]}
    latency:                              # optional one-way delay overrides (ms), both directions
      - {between: [hz, hf], ms: 25}       # city codes or node ids
    timeouts: {startup: 300, mirror: 120, query: 60}
    steps:
      - id: q1                            # optional; default "<n>-<action>"
        query: {institution: bank-hz-001, enterprise: borrower, purpose: post_loan}
        expect: {status: granted, cities_touched: [hz, hf]}
        within: 20                        # optional: re-check non-query expectations until they hold

Actions (one per step): ``ingest`` (records at a node, as its operator), ``correct`` (a
correction superseding a record), ``authorize``, ``revoke``, ``query``, ``register`` (a new
institution), ``stop`` (SIGTERM), ``kill`` (SIGKILL), ``pause`` (frozen: SIGSTOP, or ``docker
pause``), ``partition`` (cut off from the network; containers only), ``restart`` (back from any
of these), ``rogue`` (the node rewrites
its ledger with its own key: ``alter`` bodies, ``remove`` records, then ``pad``),
``wait_mirrored``, ``wait``; a step with only ``expect`` is a check.

Expectations on a query step: ``status`` (granted/denied/error), ``reason`` (denial slug),
``partial``, ``missing`` (exact set), ``missing_reason``, ``holders_include``, ``all_holders``,
``cities_touched`` (⊇), ``records_present`` / ``records_absent`` (current view),
``superseded``, ``history_includes``, ``records_min``, ``bundle_verifies``, ``receipts_on``
(nodes whose ledgers hold this query's receipt), ``in_query_history``, ``max_seconds``.
On any step: ``nodes_up``, ``nodes_down``, ``no_alarms``, ``alarms`` ({against, witnesses_min}),
``refused`` ({node, by_min}), ``records`` (a node's current/history view), ``query_history``,
``institutions``, ``bundle`` ({query, verifies, with_current_checkpoint_of}) and
``checkpoint_conflict`` ({node, bundle}). Record ids in expectations are the ids the file
gives; literal ids may use ``{uscc}`` and ``{node}`` placeholders (synthetic records are
``<node>:<uscc>:<kind>``).

The tables below (``ACTIONS``, ``QUERY_EXPECTATIONS``, ``GENERAL_EXPECTATIONS``) are the
schema; the ``docs`` of a field is what an error about it quotes.

Invariants: a file that loads is fully checked: every node id, city code,
institution id (of a preset's plan or declared), enterprise name, authorization
and query alias exists where it is used and is defined before it is used.
Every problem is reported, not just the first, each as ``file:line: field: message``
with the line taken from the YAML node marks. Times stay strings (YAML's
timestamp conversion is switched off).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ledger import PURPOSES, RECORD_TYPES, InvalidUsccError, parse_uscc
from scenarios.errors import Problem, ScenarioError, TopologyError
from scenarios.model.topology import PRESETS, Topology, load_topology, parse_topology

__all__ = [
    "ACTIONS",
    "GENERAL_EXPECTATIONS",
    "QUERY_EXPECTATIONS",
    "ExtraInstitution",
    "LatencyOverride",
    "NamedEnterprise",
    "Problem",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_scenario",
    "parse_scenario",
    "parse_time_offset",
    "resolve_scenario_path",
    "shipped_scenarios",
]

CORRECTION_OUTCOMES = ("amended", "withdrawn", "resolved")
DEFAULT_ENTERPRISES = 3000
DEFAULT_SEED = 2020
DEFAULT_TIMEOUTS = {"startup": 300.0, "mirror": 120.0, "query": 60.0}

_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
)
_OFFSET = re.compile(r"([+-])([0-9]{1,6})([smhd])")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:{}-]{0,100}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_NODE = re.compile(r"[a-z0-9]+-[0-9]+")


# --- problems ------------------------------------------------------------------------
Path_ = tuple[str | int, ...]


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- YAML with marks -------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: times stay the strings the user wrote."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class _Doc:
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)  # value node line (1-based)
    key_lines: dict[Path_, int] = field(default_factory=dict)  # line of the key naming the value
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: Path_, key: bool = False) -> int | None:
        if key and path in self.key_lines:
            return self.key_lines[path]
        p = path
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def error(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.source, self.line(path, key), dotted(path), message))


def _build(loader: _Loader, node: yaml.Node, path: Path_, doc: _Doc, depth: int = 0) -> Any:
    if depth > 50:
        doc.error(path, "nesting is too deep (recursive alias?)")
        return None
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, path + (i,), doc, depth + 1) for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool | float) or isinstance(key, bool):
                doc.problems.append(
                    Problem(
                        doc.source,
                        key_node.start_mark.line + 1,
                        dotted(path),
                        f"mapping keys must be plain words, got {key!r}",
                    )
                )
                continue
            key = str(key)
            if key in out:
                doc.problems.append(
                    Problem(
                        doc.source,
                        key_node.start_mark.line + 1,
                        dotted(path + (key,)),
                        f"duplicate key (first given on line {doc.key_lines[path + (key,)]})",
                    )
                )
                continue
            doc.key_lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, path + (key,), doc, depth + 1)
        return out
    return None


def _compose(text: str, source: str) -> tuple[Any, _Doc]:
    doc = _Doc(source)
    try:
        loader = _Loader(text)  # the reader refuses control characters up front
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(source, None, "", f"not valid YAML: {exc}"))
        return None, doc
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(
                Problem(
                    source, 1, "", "the file is empty; a scenario is a mapping with name and steps"
                )
            )
            return None, doc
        return _build(loader, node, (), doc), doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(s for s in (exc.context, exc.problem) if s)
        doc.problems.append(
            Problem(source, mark.line + 1 if mark else None, "", f"not valid YAML: {what}")
        )
        return None, doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(source, None, "", f"not valid YAML: {exc}"))
        return None, doc
    finally:
        loader.dispose()


# --- field checks ------------------------------------------------------------------------
# A checker takes (value, path, doc, ctx) and returns the normalised value or None after
# reporting a problem. ``ctx`` holds what earlier parts of the file defined.
Checker = Callable[[Any, Path_, _Doc, "_Ctx"], Any]


@dataclass(frozen=True, slots=True)
class F:
    """One field of a mapping: its checker, whether it is required, its default, its description."""

    check: Checker
    required: bool = False
    default: Any = None
    docs: str = ""


def _typename(v: Any) -> str:
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


def _mapping(
    value: Any, path: Path_, doc: _Doc, ctx: _Ctx, fields: Mapping[str, F], what: str = ""
) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        doc.error(path, f"must be a mapping{f' ({what})' if what else ''}, got {_typename(value)}")
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


def c_str(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        doc.error(path, f"must be text, got {_typename(value)}")
        return None
    text = str(value)
    if not text.strip() or len(text) > 2000:
        doc.error(path, "must be non-empty text of at most 2000 characters")
        return None
    return text


def c_id(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is not None and not _ID.fullmatch(text):
        doc.error(
            path,
            "must be letters, digits and . _ : - (at most 100, starting with a letter or digit), "
            f"got {text!r}",
        )
        return None
    return text


def c_new_record_id(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    """The id of a record a step writes: no placeholders (the runner appends ``.r<run tag>``)."""
    text = c_id(value, path, doc, ctx)
    if text is not None and ("{" in text or "}" in text):
        doc.error(path, f"a new record's id cannot hold placeholders, got {text!r}")
        return None
    return text


def c_alias(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is not None and not _ALIAS.fullmatch(text):
        doc.error(path, f"must be a name: a letter, then letters, digits, '_' or '-', got {text!r}")
        return None
    return text


def c_int(lo: int | None = None, hi: int | None = None) -> Checker:
    def check(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            doc.error(path, f"must be an integer, got {_typename(value)}")
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            doc.error(path, f"must be {rng}, got {value}")
            return None
        return value

    return check


def c_number(lo: float = 0.0, hi: float | None = None) -> Checker:
    def check(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            doc.error(path, f"must be a number, got {_typename(value)}")
            return None
        if value < lo or (hi is not None and value > hi):
            doc.error(
                path,
                f"must be >= {lo}" + (f" and <= {hi}" if hi is not None else "") + f", got {value}",
            )
            return None
        return float(value)

    return check


def c_bool(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> bool | None:
    if not isinstance(value, bool):
        doc.error(path, f"must be true or false, got {_typename(value)}")
        return None
    return value


def c_choice(*choices: str) -> Checker:
    def check(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
        if not isinstance(value, str) or value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            doc.error(path, f"must be one of {', '.join(choices)}, got {value!r}{hint}")
            return None
        return value

    return check


def c_list(item: Checker, min_items: int = 1, unique: bool = True) -> Checker:
    def check(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> list[Any] | None:
        if isinstance(value, str | int) and not isinstance(value, bool) and min_items <= 1:
            value = [value]  # a single item may be written without brackets
        if not isinstance(value, list):
            doc.error(path, f"must be a list, got {_typename(value)}")
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


def c_body(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    """A record body: a JSON object without floats (money is integer minor units)."""
    if not isinstance(value, dict):
        doc.error(path, f"must be a mapping (the record's JSON body), got {_typename(value)}")
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


def c_time(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    if not isinstance(value, str) or parse_time_offset(value) is None:
        doc.error(
            path,
            "must be 'now', an offset like -30d, +365d, -2h, +10m, or a UTC time "
            f"like 2021-10-31T08:00:00Z, got {value!r}",
        )
        return None
    return value


def c_purpose(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    got = c_choice(*PURPOSES)(value, path, doc, ctx)
    return None if got is None else str(got)


def c_record_type(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    got = c_choice(*RECORD_TYPES)(value, path, doc, ctx)
    return None if got is None else str(got)


# --- what the file defines, for reference checks --------------------------------------------
@dataclass
class _Ctx:
    topology: Topology | None = None
    institutions: dict[str, tuple[str, str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # id → (city, node, purposes)
    plan_known: bool = False  # whether the consortium's own institution ids are known
    enterprises: dict[str, Any] = field(default_factory=dict)
    auths: dict[str, int] = field(default_factory=dict)  # alias → step index defining it
    queries: dict[str, int] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)  # logical record id → enterprise name
    step_ids: set[str] = field(default_factory=set)
    step_index: int = 0

    def nodes(self) -> tuple[str, ...]:
        return self.topology.node_ids if self.topology else ()

    def cities(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.topology.cities) if self.topology else ()


def c_node(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
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


def c_city(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
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


def c_node_or_city(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is None:
        return None
    if ctx.topology is not None and text not in ctx.nodes() and text not in ctx.cities():
        doc.error(
            path, f"{text!r} is neither a node nor a city code of topology {ctx.topology.name}"
        )
        return None
    return text


def c_enterprise(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
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


def c_institution(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
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


def c_auth_ref(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | dict[str, str] | None:
    if isinstance(value, dict):
        got = _mapping(
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


def c_query_ref(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
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


def c_record_ref(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> str | None:
    """A record id: a logical id defined by an earlier ingest/correct step, or a literal id
    (placeholders ``{uscc}`` and ``{node}`` are filled in by the runner)."""
    return c_id(value, path, doc, ctx)


def c_nodes_or_all(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> list[str] | str | None:
    if value == "all":
        return "all"
    got = c_list(c_node, min_items=0)(value, path, doc, ctx)
    return None if got is None else [str(n) for n in got]


# --- sections ---------------------------------------------------------------------------------
RECORD_FIELDS = {
    "enterprise": F(c_enterprise, True, docs="a name from enterprises.named or a USCC"),
    "type": F(c_record_type, True, docs=f"one of {', '.join(RECORD_TYPES)}"),
    "id": F(c_new_record_id, True, docs="the record id (made unique per run by the runner)"),
    "source": F(c_id, docs="the data source, e.g. hf-amr"),
    "observed_at": F(c_time, default="now"),
    "body": F(c_body, True, docs="the record's JSON body"),
}

ACTIONS: dict[str, dict[str, F]] = {
    "ingest": {
        "node": F(c_node, True, docs="the node whose operator ingests"),
        "records": F(
            c_list(lambda v, p, d, c: _mapping(v, p, d, c, RECORD_FIELDS, "a record")), True
        ),
        "mirror": F(
            c_bool, default=True, docs="wait until every peer has mirrored the new entries"
        ),
    },
    "correct": {
        "node": F(c_node, True),
        "enterprise": F(c_enterprise, True),
        "supersedes": F(
            c_record_ref, True, docs="the id of the record (or correction) this corrects"
        ),
        "id": F(c_new_record_id, True),
        "outcome": F(c_choice(*CORRECTION_OUTCOMES), default="amended"),
        "source": F(c_id),
        "observed_at": F(c_time, default="now"),
        "body": F(c_body, True),
        "mirror": F(c_bool, default=True),
    },
    "authorize": {
        "as": F(c_alias, True, docs="the name later steps use for this authorization"),
        "institution": F(c_institution, True),
        "enterprise": F(c_enterprise, True),
        "purposes": F(c_list(c_purpose), True),
        "valid_from": F(c_time, default="now"),
        "valid_until": F(c_time, default="+365d"),
    },
    "revoke": {
        "authorization": F(c_alias, True),
        "reason": F(c_str, default="consent withdrawn by the enterprise"),
        "by": F(c_choice("institution", "operator"), default="institution"),
    },
    "query": {
        "as": F(c_alias, docs="the name later steps use for this query (default: the step id)"),
        "institution": F(c_institution, True),
        "enterprise": F(c_enterprise, True),
        "purpose": F(c_purpose, True),
        "authorization": F(
            c_auth_ref,
            default="auto",
            docs=(
                "an authorize alias, 'auto' (file one for this query), 'none' (no authorization), "
                "or {id: ...}"
            ),
        ),
    },
    "register": {
        "institution": F(c_id, True),
        "city": F(c_city, True),
        "node": F(c_node),
        "purposes": F(c_list(c_purpose), True),
        "name": F(c_str),
    },
    "stop": {"node": F(c_node, True)},
    "kill": {"node": F(c_node, True)},
    "pause": {"node": F(c_node, True)},
    "partition": {"node": F(c_node, True)},
    "restart": {"node": F(c_node, True), "mirror": F(c_bool, default=True)},
    "rogue": {
        "node": F(c_node, True, docs="the node that rewrites its history"),
        "alter": F(
            c_list(
                lambda v, p, d, c: _mapping(
                    v,
                    p,
                    d,
                    c,
                    {"record": F(c_record_ref, True), "body": F(c_body, True)},
                    "a record to alter",
                ),
                min_items=0,
            )
        ),
        "remove": F(c_list(c_record_ref, min_items=0)),
        "pad": F(
            c_int(0, 100000),
            docs="entries to append after the rewrite (default: enough to outgrow the old log)",
        ),
    },
    "wait_mirrored": {"timeout": F(c_number(1.0, 3600.0))},
    "wait": {"seconds": F(c_number(0.0, 600.0), True)},
    "check": {},
}

# Shorthand: `kill: sz-2`, `wait: 3`, `wait_mirrored: {}` / `wait_mirrored: true`.
_SHORTHAND = {
    "stop": "node",
    "kill": "node",
    "pause": "node",
    "partition": "node",
    "restart": "node",
    "wait": "seconds",
    "wait_mirrored": None,
}


def _x_records(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    return _mapping(
        value,
        path,
        doc,
        ctx,
        {
            "node": F(c_node, True),
            "enterprise": F(c_enterprise, True),
            "view": F(c_choice("current", "history"), default="current"),
            "present": F(c_list(c_record_ref, min_items=0)),
            "absent": F(c_list(c_record_ref, min_items=0)),
        },
    )


def _x_query_history(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    return _mapping(
        value,
        path,
        doc,
        ctx,
        {
            "enterprise": F(c_enterprise, True),
            "node": F(c_node, docs="default: the enterprise's home node"),
            "includes": F(c_list(c_query_ref), True),
            "outcome": F(c_choice("granted", "denied")),
        },
    )


def _x_alarms(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    return _mapping(
        value, path, doc, ctx, {"against": F(c_node, True), "witnesses_min": F(c_int(1), default=1)}
    )


def _x_refused(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    return _mapping(
        value, path, doc, ctx, {"node": F(c_node, True), "by_min": F(c_int(1), default=1)}
    )


def _x_institutions(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    def registered(v: Any, p: Path_, d: _Doc, c: _Ctx) -> Any:
        return "all" if v == "all" else c_int(0)(v, p, d, c)

    return _mapping(
        value,
        path,
        doc,
        ctx,
        {
            "registered": F(registered, docs="'all' or a minimum count"),
            "include": F(c_list(c_institution)),
        },
    )


def _x_bundle(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    return _mapping(
        value,
        path,
        doc,
        ctx,
        {
            "query": F(c_query_ref, True),
            "verifies": F(c_bool, True),
            "with_current_checkpoint_of": F(
                c_node, docs="replace that holder's checkpoint by the one it serves now"
            ),
        },
    )


def _x_conflict(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, Any] | None:
    return _mapping(
        value, path, doc, ctx, {"node": F(c_node, True), "bundle": F(c_query_ref, True)}
    )


QUERY_EXPECTATIONS: dict[str, F] = {
    "status": F(c_choice("granted", "denied", "error")),
    "reason": F(
        c_str, docs="the denial reason slug, e.g. expired, unknown, other-purpose, revoked"
    ),
    "partial": F(c_bool),
    "missing": F(c_list(c_node, min_items=0), docs="exactly these holders are missing"),
    "missing_reason": F(
        c_str, docs="a word every missing holder's reason contains, e.g. unavailable, refused"
    ),
    "holders_include": F(c_list(c_node), docs="these holders answered"),
    "all_holders": F(c_bool, docs="every node known to hold the enterprise's records answered"),
    "cities_touched": F(
        c_list(c_city), docs="the query touched at least these cities (home node and holders asked)"
    ),
    "records_present": F(c_list(c_record_ref), docs="in the report's current view"),
    "records_absent": F(c_list(c_record_ref), docs="not in the report's current view"),
    "superseded": F(c_list(c_record_ref), docs="in the report's history but not its current view"),
    "history_includes": F(c_list(c_record_ref), docs="in the report's history"),
    "records_min": F(c_int(0)),
    "bundle_verifies": F(c_bool),
    "receipts_on": F(
        c_list(c_node), docs="a receipt of this query is on each of these nodes' ledgers"
    ),
    "in_query_history": F(c_bool, docs="the enterprise's home node lists this query"),
    "max_seconds": F(c_number(0.0)),
}

GENERAL_EXPECTATIONS: dict[str, F] = {
    "nodes_up": F(c_nodes_or_all, docs="'all' or a list of nodes answering"),
    "nodes_down": F(c_list(c_node, min_items=0)),
    "no_alarms": F(c_bool),
    "alarms": F(_x_alarms, docs="{against: node, witnesses_min: N}"),
    "refused": F(_x_refused, docs="{node: node, by_min: N}"),
    "records": F(_x_records),
    "query_history": F(_x_query_history),
    "institutions": F(_x_institutions),
    "bundle": F(_x_bundle),
    "checkpoint_conflict": F(
        _x_conflict,
        docs="{node, bundle}: the node's current checkpoint conflicts with the one in the bundle",
    ),
}


# --- the scenario ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NamedEnterprise:
    name: str
    city: str | None
    index: int | None = None  # synthetic (city, index)
    pick: int | None = (
        None  # the pick-th synthetic enterprise of city with >= min_cities holder cities
    )
    min_cities: int = 1
    new: bool = False  # a fresh USCC per run
    uscc: str | None = None
    node: str | None = None  # home node (new enterprises)
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ExtraInstitution:
    institution_id: str
    city: str
    node: str
    purposes: tuple[str, ...]
    name: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class LatencyOverride:
    a: str
    b: str
    ms: float
    line: int | None = None


@dataclass(frozen=True)
class Step:
    index: int
    id: str
    action: str
    args: dict[str, Any]
    expect: dict[str, Any]
    within: float | None
    note: str | None
    line: int | None
    expect_lines: dict[str, int | None] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        return str(self.args.get("as") or self.id)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    topology: Topology
    preset: str | None  # preset name, or None for an inline topology
    topology_raw: dict[str, Any] | None  # the inline topology as written
    enterprises: int
    seed: int
    named: dict[str, NamedEnterprise]
    institutions: tuple[ExtraInstitution, ...]
    latency: tuple[LatencyOverride, ...]
    timeouts: dict[str, float]
    steps: tuple[Step, ...]


def _topology(
    value: Any, path: Path_, doc: _Doc
) -> tuple[Topology | None, str | None, dict[str, Any] | None]:
    if isinstance(value, str):
        if value not in PRESETS:
            doc.error(
                path,
                f"unknown preset {value!r}; presets are {', '.join(PRESETS)} (or write the cities inline)",
            )
            return None, None, None
        return load_topology(value), value, None
    if not isinstance(value, dict):
        doc.error(
            path,
            f"must be a preset name ({', '.join(PRESETS)}) or a mapping with cities, got {_typename(value)}",
        )
        return None, None, None
    try:
        topo = parse_topology(value, "topology")
    except TopologyError as exc:
        msg = str(exc).removeprefix("topology: ")
        m = re.match(r"cities\[(\d+)\]", msg)
        where = path + ("cities", int(m.group(1))) if m else path
        doc.error(where, msg)
        return None, None, None
    if "name" not in value:
        doc.error(
            path,
            "an inline topology needs a 'name' (the network is reused only when the topology matches)",
        )
        return None, None, None
    if topo.name in PRESETS:
        doc.error(
            path + ("name",),
            f"{topo.name!r} is a preset's name; give the inline topology its own name",
        )
        return None, None, None
    return topo, None, dict(value)


def _institution_plan(topology: Topology) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    from scenarios.localnet import institution_plan

    return {
        iid: (city, node, tuple(purposes))
        for iid, _name, city, node, purposes in institution_plan(topology)
    }


def _named(value: Any, path: Path_, doc: _Doc, ctx: _Ctx) -> dict[str, NamedEnterprise]:
    out: dict[str, NamedEnterprise] = {}
    if value is None:
        return out
    if not isinstance(value, dict):
        doc.error(path, f"must be a mapping of names to enterprises, got {_typename(value)}")
        return out
    for name, spec in value.items():
        p = path + (name,)
        if not _ALIAS.fullmatch(name):
            doc.error(
                p,
                "enterprise names must start with a letter and use letters, digits, '_' or '-'",
                key=True,
            )
            continue
        got = _mapping(
            spec,
            p,
            doc,
            ctx,
            {
                "city": F(c_city),
                "index": F(c_int(0)),
                "pick": F(c_int(0, 10000)),
                "min_cities": F(c_int(1, 2)),
                "new": F(c_bool),
                "uscc": F(c_str),
                "node": F(c_node),
            },
            "an enterprise",
        )
        if got is None:
            continue
        kinds = [k for k in ("index", "pick", "new", "uscc") if k in got and got[k] is not False]
        if len(kinds) != 1:
            doc.error(p, "give exactly one of index, pick, new: true or uscc")
            continue
        if kinds[0] != "uscc" and "city" not in got and "city" not in spec:
            doc.error(p, f"missing required field 'city' (needed with {kinds[0]})")
            continue
        if "min_cities" in got and kinds[0] != "pick":
            doc.error(p + ("min_cities",), "only applies with pick", key=True)
            continue
        if "node" in got and kinds[0] != "new":
            doc.error(
                p + ("node",),
                "only new enterprises take a home node; synthetic ones have theirs",
                key=True,
            )
            continue
        if (
            "node" in got
            and ctx.topology
            and ctx.topology.city_of_node(got["node"]).code != got.get("city")
        ):
            doc.error(p + ("node",), f"node {got['node']} is not in city {got.get('city')}")
            continue
        city = got.get("city")
        if kinds[0] == "uscc":
            try:
                parsed = parse_uscc(str(got["uscc"]))
            except InvalidUsccError as exc:
                doc.error(p + ("uscc",), f"not a valid USCC: {exc}")
                continue
            if ctx.topology:
                match = [c.code for c in ctx.topology.cities if c.admin_code == parsed.admin_code]
                if not match:
                    doc.error(
                        p + ("uscc",),
                        f"administrative code {parsed.admin_code} is served by no city of the topology",
                    )
                    continue
                city = match[0]
        out[name] = NamedEnterprise(
            name,
            city,
            got.get("index"),
            got.get("pick"),
            got.get("min_cities", 1),
            bool(got.get("new", False)),
            got.get("uscc"),
            got.get("node"),
            doc.line(p),
        )
    return out


def _step(raw: Any, i: int, doc: _Doc, ctx: _Ctx) -> Step | None:
    path: Path_ = ("steps", i)
    if not isinstance(raw, dict):
        doc.error(
            path,
            f"a step must be a mapping with one action ({', '.join(a for a in ACTIONS if a != 'check')}) "
            f"or expect, got {_typename(raw)}",
        )
        return None
    meta = {"id", "note", "expect", "within"}
    actions = [k for k in raw if k in ACTIONS and k != "check"]
    unknown = [k for k in raw if k not in ACTIONS and k not in meta]
    for k in unknown:
        close = difflib.get_close_matches(k, [*ACTIONS, *meta], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        doc.error(
            path + (k,),
            f"unknown action or field{hint} (actions: {', '.join(a for a in ACTIONS if a != 'check')})",
            key=True,
        )
    if len(actions) > 1:
        doc.error(path, f"a step has one action, this one has {len(actions)}: {', '.join(actions)}")
        return None
    if not actions and "expect" not in raw:
        if not unknown:
            doc.error(path, "a step needs an action or an expect block")
        return None
    action = actions[0] if actions else "check"
    step_id = f"{i + 1}-{action}"
    if "id" in raw:
        got_id = c_alias(raw["id"], path + ("id",), doc, ctx)
        if got_id is not None:
            if got_id in ctx.step_ids:
                doc.error(path + ("id",), f"step id {got_id!r} is used by an earlier step")
            step_id = got_id
    ctx.step_ids.add(step_id)
    note = c_str(raw["note"], path + ("note",), doc, ctx) if raw.get("note") is not None else None
    within = (
        c_number(0.0, 3600.0)(raw["within"], path + ("within",), doc, ctx)
        if "within" in raw
        else None
    )

    args: dict[str, Any] = {}
    if action != "check":
        value = raw[action]
        short = _SHORTHAND.get(action, "-")
        if short != "-" and (
            value is None or value is True or (short and not isinstance(value, dict))
        ):
            value = {} if (value is None or value is True or short is None) else {short: value}
        got = _mapping(
            value, path + (action,), doc, ctx, ACTIONS[action], f"the {action} arguments"
        )
        if got is None:
            return None
        args = got
        _step_semantics(action, args, path + (action,), doc, ctx, step_id)

    expect: dict[str, Any] = {}
    expect_lines: dict[str, int | None] = {}
    if "expect" in raw:
        allowed = dict(GENERAL_EXPECTATIONS)
        if action == "query":
            allowed.update(QUERY_EXPECTATIONS)
        value = raw["expect"]
        if isinstance(value, dict):
            for k in value:
                if k in QUERY_EXPECTATIONS and action != "query":
                    doc.error(
                        path + ("expect", k),
                        f"{k!r} is a query expectation; this step is a {action}",
                        key=True,
                    )
            value = {
                k: v
                for k, v in value.items()
                if not (k in QUERY_EXPECTATIONS and action != "query")
            }
        got = _mapping(value, path + ("expect",), doc, ctx, allowed, "expectations")
        if got is not None:
            expect = got
            expect_lines = {k: doc.line(path + ("expect", k), key=True) for k in got}
            if action == "check" and not expect and not unknown:
                doc.error(path + ("expect",), "lists no expectations")
    return Step(i, step_id, action, args, expect, within, note, doc.line(path), expect_lines)


def _step_semantics(
    action: str, args: dict[str, Any], path: Path_, doc: _Doc, ctx: _Ctx, step_id: str
) -> None:
    """Cross-field checks and what the step defines for later steps."""
    if action == "authorize":
        alias = args.get("as")
        if alias in ctx.auths:
            doc.error(
                path + ("as",), f"authorization {alias!r} is already defined by an earlier step"
            )
        elif alias:
            ctx.auths[alias] = ctx.step_index
        inst = ctx.institutions.get(args.get("institution", ""))
        if inst and args.get("purposes"):
            extra = [p for p in args["purposes"] if p not in inst[2]]
            if extra:
                doc.error(
                    path + ("purposes",),
                    f"institution {args['institution']} is registered for "
                    f"{', '.join(inst[2])}, not {', '.join(extra)}",
                )
        vf, vu = args.get("valid_from"), args.get("valid_until")
        if vf and vu:
            a, b = _seconds(vf), _seconds(vu)
            if a is not None and b is not None and b <= a:
                doc.error(path + ("valid_until",), f"must be later than valid_from ({vf})")
    elif action == "revoke":
        alias = args.get("authorization")
        if alias and alias not in ctx.auths:
            doc.error(
                path + ("authorization",),
                f"authorization {alias!r} is not defined by an earlier authorize step "
                f"(defined: {', '.join(ctx.auths) or 'none'})",
            )
    elif action == "query":
        alias = args.get("as") or step_id
        if alias in ctx.queries:
            doc.error(
                path + ("as",) if "as" in args else path,
                f"query {alias!r} is already defined by an earlier step",
            )
        else:
            ctx.queries[alias] = ctx.step_index
    elif action == "ingest":
        for j, r in enumerate(args.get("records") or []):
            if r and "id" in r:
                if r["id"] in ctx.records:
                    doc.error(
                        path + ("records", j, "id"),
                        f"record id {r['id']!r} is already used in this scenario",
                    )
                ctx.records[r["id"]] = r.get("enterprise", "")
    elif action == "correct":
        rid = args.get("id")
        if rid in ctx.records:
            doc.error(path + ("id",), f"record id {rid!r} is already used in this scenario")
        if rid and rid == args.get("supersedes"):
            doc.error(path + ("supersedes",), "a correction cannot supersede itself")
        if rid:
            ctx.records[rid] = args.get("enterprise", "")
    elif action == "register":
        iid = args.get("institution")
        if iid in ctx.institutions:
            doc.error(path + ("institution",), f"institution {iid!r} already exists")
        node = args.get("node")
        city = args.get("city")
        if node and city and ctx.topology and ctx.topology.city_of_node(node).code != city:
            doc.error(path + ("node",), f"node {node} is not in city {city}")
        if iid and city and ctx.topology:
            ctx.institutions[iid] = (
                city,
                node or ctx.topology.city(city).node_ids[0],
                tuple(args.get("purposes") or ()),
            )
    elif action == "rogue" and not args.get("alter") and not args.get("remove"):
        doc.error(path, "a rogue node must alter or remove at least one record")


def _seconds(text: str) -> int | None:
    kind = parse_time_offset(text)
    if kind is None:
        return None
    if kind[0] == "offset":
        import time as _t

        return int(_t.time()) + kind[1]
    import calendar
    import time as _t

    return calendar.timegm(_t.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate a scenario's YAML text.

    Raises:
        ScenarioError: every problem found, each naming its line and field.
    """
    raw, doc = _compose(text, source)
    if doc.problems:
        raise ScenarioError(doc.problems)
    ctx = _Ctx()
    if not isinstance(raw, dict):
        doc.error(
            (), f"a scenario is a mapping with name, topology and steps, got {_typename(raw)}"
        )
        raise ScenarioError(doc.problems)
    top = {
        "name",
        "description",
        "topology",
        "enterprises",
        "institutions",
        "latency",
        "timeouts",
        "steps",
    }
    for k in raw:
        if k not in top:
            close = difflib.get_close_matches(k, list(top), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; known fields: {', '.join(sorted(top))}"
            )
            doc.error((k,), f"unknown field{hint}", key=True)
    name = c_alias(raw["name"], ("name",), doc, ctx) if "name" in raw else None
    if "name" not in raw:
        doc.error((), "missing required field 'name'")
    description = (
        c_str(raw["description"], ("description",), doc, ctx) if raw.get("description") else ""
    )

    topology, preset, topology_raw = (None, None, None)
    if "topology" not in raw:
        doc.error((), "missing required field 'topology' (launch-2020, oct-2021 or inline cities)")
    else:
        topology, preset, topology_raw = _topology(raw["topology"], ("topology",), doc)
    ctx.topology = topology
    if topology is not None:
        ctx.institutions = _institution_plan(topology)
        ctx.plan_known = bool(ctx.institutions) or topology.institutions == 0

    ent = (
        _mapping(
            raw.get("enterprises", {}),
            ("enterprises",),
            doc,
            ctx,
            {
                "count": F(c_int(1, 2_000_000), default=DEFAULT_ENTERPRISES),
                "seed": F(c_int(0), default=DEFAULT_SEED),
                "named": F(lambda v, p, d, c: v),
            },
            "count, seed, named",
        )
        or {}
    )
    count = int(ent.get("count", DEFAULT_ENTERPRISES))
    if topology is not None and count < len(topology.cities):
        doc.error(
            ("enterprises", "count"),
            f"must be at least the number of cities ({len(topology.cities)})",
        )
    ctx.enterprises = _named(
        raw.get("enterprises", {}).get("named")
        if isinstance(raw.get("enterprises"), dict)
        else None,
        ("enterprises", "named"),
        doc,
        ctx,
    )

    extras: list[ExtraInstitution] = []
    inst_raw = raw.get("institutions")
    if inst_raw is not None:
        if not isinstance(inst_raw, list):
            doc.error(
                ("institutions",), f"must be a list of institutions, got {_typename(inst_raw)}"
            )
        else:
            for j, item in enumerate(inst_raw):
                p: Path_ = ("institutions", j)
                got = _mapping(
                    item,
                    p,
                    doc,
                    ctx,
                    {
                        "id": F(c_id, True),
                        "city": F(c_city, True),
                        "node": F(c_node),
                        "purposes": F(c_list(c_purpose), True),
                        "name": F(c_str),
                    },
                    "an institution",
                )
                if not got or "id" not in got or "city" not in got or "purposes" not in got:
                    continue
                if got["id"] in ctx.institutions:
                    doc.error(p + ("id",), f"institution {got['id']!r} already exists")
                    continue
                node = got.get("node") or (
                    topology.city(got["city"]).node_ids[0] if topology else ""
                )
                if topology and topology.city_of_node(node).code != got["city"]:
                    doc.error(p + ("node",), f"node {node} is not in city {got['city']}")
                    continue
                extras.append(
                    ExtraInstitution(
                        got["id"],
                        got["city"],
                        node,
                        tuple(got["purposes"]),
                        got.get("name") or f"Scenario institution {got['id']}",
                        doc.line(p),
                    )
                )
                ctx.institutions[got["id"]] = (got["city"], node, tuple(got["purposes"]))

    latency: list[LatencyOverride] = []
    lat_raw = raw.get("latency")
    if lat_raw is not None:
        if not isinstance(lat_raw, list):
            doc.error(
                ("latency",),
                f"must be a list of {{between: [a, b], ms: N}}, got {_typename(lat_raw)}",
            )
        else:
            for j, item in enumerate(lat_raw):
                p = ("latency", j)
                got = _mapping(
                    item,
                    p,
                    doc,
                    ctx,
                    {
                        "between": F(c_list(c_node_or_city, min_items=2), True),
                        "ms": F(c_number(0.0, 10000.0), True),
                    },
                    "a link",
                )
                if got and "between" in got and "ms" in got:
                    if len(got["between"]) != 2:
                        doc.error(
                            p + ("between",),
                            f"must name exactly two nodes or cities, got {len(got['between'])}",
                        )
                        continue
                    latency.append(
                        LatencyOverride(
                            got["between"][0], got["between"][1], got["ms"], doc.line(p)
                        )
                    )

    timeouts = dict(DEFAULT_TIMEOUTS)
    if raw.get("timeouts") is not None:
        got = (
            _mapping(
                raw["timeouts"],
                ("timeouts",),
                doc,
                ctx,
                {
                    "startup": F(c_number(1.0, 3600.0)),
                    "mirror": F(c_number(1.0, 3600.0)),
                    "query": F(c_number(1.0, 600.0)),
                },
                "seconds",
            )
            or {}
        )
        timeouts.update(got)

    steps: list[Step] = []
    if "steps" not in raw:
        doc.error((), "missing required field 'steps'")
    elif not isinstance(raw["steps"], list) or not raw["steps"]:
        doc.error(("steps",), f"must be a non-empty list of steps, got {_typename(raw['steps'])}")
    else:
        for i, item in enumerate(raw["steps"]):
            ctx.step_index = i
            step = _step(item, i, doc, ctx)
            if step is not None:
                steps.append(step)
    if doc.problems:
        raise ScenarioError(doc.problems)
    assert topology is not None and name is not None
    return Scenario(
        name=name,
        description=description or "",
        source=source,
        topology=topology,
        preset=preset,
        topology_raw=topology_raw,
        enterprises=count,
        seed=int(ent.get("seed", DEFAULT_SEED)),
        named=ctx.enterprises,
        institutions=tuple(extras),
        latency=tuple(latency),
        timeouts=timeouts,
        steps=tuple(steps),
    )


def shipped_scenarios() -> dict[str, Path]:
    """Name → path of the scenario files shipped in ``scenarios/files``."""
    root = resources.files("scenarios").joinpath("files")
    out = {}
    for item in sorted(root.iterdir(), key=lambda t: t.name):
        if item.name.endswith(".yaml"):
            out[item.name[: -len(".yaml")]] = Path(str(item))
    return out


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A file path, or the name of a shipped scenario (``post-loan-monitoring``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = shipped_scenarios()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise ScenarioError(
        [
            Problem(
                str(name_or_path),
                None,
                "",
                "no such file, nor a shipped scenario; shipped: " + ", ".join(shipped),
            )
        ]
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (or a shipped scenario by name)."""
    p = resolve_scenario_path(path)
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(str(p), None, "", f"cannot be read: {exc}")]) from exc
    return parse_scenario(text, str(p))
