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
``wait_mirrored``, ``wait``, and for objections ``object``, ``decide``, ``advance_clock`` (the
network's clock, every node together) and ``credit_line`` (a lender's decision), described in
:mod:`scenarios.scenario.objections`; a step with only ``expect`` is a check.

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

``ACTIONS`` below is the schema of the steps' actions; what each expectation accepts
(``QUERY_EXPECTATIONS``, ``GENERAL_EXPECTATIONS``) lives in
:mod:`scenarios.scenario.expectations`, beside the check that decides it. The field checks
are in :mod:`scenarios.scenario.fields`, the YAML reader with line marks in
:mod:`scenarios.scenario.marks`; the ``docs`` of a field is what an error about it quotes.

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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ledger import RECORD_TYPES, InvalidRecordError, InvalidUsccError, check_body, parse_uscc
from scenarios.errors import Problem, ScenarioError, TopologyError
from scenarios.model.topology import PRESETS, Topology, load_topology, parse_topology
from scenarios.scenario.expectations import GENERAL_EXPECTATIONS, QUERY_EXPECTATIONS
from scenarios.scenario.fields import (
    ALIAS_RE,
    F,
    SpecContext,
    c_alias,
    c_auth_ref,
    c_body,
    c_bool,
    c_choice,
    c_city,
    c_enterprise,
    c_id,
    c_institution,
    c_int,
    c_list,
    c_new_record_id,
    c_node,
    c_node_or_city,
    c_number,
    c_purpose,
    c_record_ref,
    c_record_type,
    c_str,
    c_time,
    check_mapping,
    parse_time_offset,
    typename,
)
from scenarios.scenario.marks import MarkedDoc, MarkedLoader, Path_, compose_marked
from scenarios.scenario.objections import OBJECTION_ACTIONS, objection_semantics
from scenarios.yamlfile import read_yaml_text

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


MarkedLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# --- sections ---------------------------------------------------------------------------------
RECORD_FIELDS = {
    "enterprise": F(c_enterprise, True, docs="a name from enterprises.named or a USCC"),
    "type": F(c_record_type, True, docs=f"one of {', '.join(RECORD_TYPES)}"),
    "id": F(c_new_record_id, True, docs="the record id (made unique per run by the runner)"),
    "source": F(c_id, docs="the data source, e.g. hf-amr"),
    "observed_at": F(c_time, default="now"),
    "body": F(c_body, True, docs="the record's JSON body"),
}


def _record(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    """A record to ingest; its body must also fit its report item's schema (as ingest checks)."""
    record = check_mapping(value, path, doc, ctx, RECORD_FIELDS, "a record")
    if record is not None and "type" in record and "body" in record:
        try:
            check_body(str(record["type"]), record["body"])
        except InvalidRecordError as exc:
            doc.error(path + ("body",), str(exc))
    return record


ACTIONS: dict[str, dict[str, F]] = {
    "ingest": {
        "node": F(c_node, True, docs="the node whose operator ingests"),
        "records": F(c_list(_record), True),
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
                lambda v, p, d, c: check_mapping(
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

ACTIONS.update(OBJECTION_ACTIONS)  # object, decide, advance_clock, credit_line

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
    value: Any, path: Path_, doc: MarkedDoc
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
            f"must be a preset name ({', '.join(PRESETS)}) or a mapping with cities, got {typename(value)}",
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


def _named(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, NamedEnterprise]:
    out: dict[str, NamedEnterprise] = {}
    if value is None:
        return out
    if not isinstance(value, dict):
        doc.error(path, f"must be a mapping of names to enterprises, got {typename(value)}")
        return out
    for name, spec in value.items():
        p = path + (name,)
        if not ALIAS_RE.fullmatch(name):
            doc.error(
                p,
                "enterprise names must start with a letter and use letters, digits, '_' or '-'",
                key=True,
            )
            continue
        got = check_mapping(
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


def _step(raw: Any, i: int, doc: MarkedDoc, ctx: SpecContext) -> Step | None:
    path: Path_ = ("steps", i)
    if not isinstance(raw, dict):
        doc.error(
            path,
            f"a step must be a mapping with one action ({', '.join(a for a in ACTIONS if a != 'check')}) "
            f"or expect, got {typename(raw)}",
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
        got = check_mapping(
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
        got = check_mapping(value, path + ("expect",), doc, ctx, allowed, "expectations")
        if got is not None:
            expect = got
            expect_lines = {k: doc.line(path + ("expect", k), key=True) for k in got}
            if action == "check" and not expect and not unknown:
                doc.error(path + ("expect",), "lists no expectations")
    return Step(i, step_id, action, args, expect, within, note, doc.line(path), expect_lines)


def _step_semantics(
    action: str, args: dict[str, Any], path: Path_, doc: MarkedDoc, ctx: SpecContext, step_id: str
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
    objection_semantics(action, args, path, doc, ctx)


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
    raw, doc = compose_marked(text, source)
    if doc.problems:
        raise ScenarioError(doc.problems)
    ctx = SpecContext()
    if not isinstance(raw, dict):
        doc.error((), f"a scenario is a mapping with name, topology and steps, got {typename(raw)}")
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
        doc.error(
            (), "missing required field 'topology' (launch-2020, oct-2021, yrd-41 or inline cities)"
        )
    else:
        topology, preset, topology_raw = _topology(raw["topology"], ("topology",), doc)
    ctx.topology = topology
    if topology is not None:
        ctx.institutions = _institution_plan(topology)
        ctx.plan_known = bool(ctx.institutions) or topology.institutions == 0

    ent = (
        check_mapping(
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
                ("institutions",), f"must be a list of institutions, got {typename(inst_raw)}"
            )
        else:
            for j, item in enumerate(inst_raw):
                p: Path_ = ("institutions", j)
                got = check_mapping(
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
                f"must be a list of {{between: [a, b], ms: N}}, got {typename(lat_raw)}",
            )
        else:
            for j, item in enumerate(lat_raw):
                p = ("latency", j)
                got = check_mapping(
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
            check_mapping(
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
        doc.error(("steps",), f"must be a non-empty list of steps, got {typename(raw['steps'])}")
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
        text = read_yaml_text(p)
    except (OSError, ValueError) as exc:
        raise ScenarioError([Problem(str(p), None, "", f"cannot be read: {exc}")]) from exc
    return parse_scenario(text, str(p))
