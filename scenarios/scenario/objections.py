"""Scenario steps and expectations for objections, the network clock and lenders' credit lines.

Actions (their schema is ``OBJECTION_ACTIONS``, merged into ``spec.ACTIONS``):

* ``object`` — the enterprise files an objection at its home node, signed through its
  city's registry: ``{as, enterprise, holder, record, reason}``. A refused filing is
  recorded (status ``refused`` with the problem's reason), not a failed step: expect it.
* ``decide`` — the holder's operator replies: ``{objection, outcome, verification,
  correction: {id, outcome, body, source}}`` (``correction`` with ``corrected`` only).
* ``advance_clock`` — every node's network clock moves ``{days}`` forward, together.
* ``credit_line`` — a lender's decision on a credit line, kept in the run's report:
  ``{institution, enterprise, amount_minor, action: freeze|restore, basis, because}``.
  With ``basis`` (a query alias), the decision must follow from that verified report:
  freezing needs a negative record (administrative penalty, enforcement, black list) in
  its current view, restoring needs none.

Expectations on a query step (``OBJECTION_QUERY_EXPECTATIONS``): ``disputed`` (records
the report marks disputed), ``not_disputed``, ``objection_status`` ({record: status}).
On any step (``OBJECTION_GENERAL_EXPECTATIONS``): ``objection`` ({objection, status,
reason, overdue, late}: the holder's signed entries, fetched and checked by the home
node), ``overdue_objections`` ({include, exclude}: what ``creditchain status`` shows),
``clock`` ({advanced_days}: every node agrees, counted from where the run found the
clock) and ``credit_line`` ({institution, enterprise, state, amount_minor}).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger import OBJECTION_OUTCOMES, CorrectionEntry, parse_entry, parse_json
from node.bundle import verify_bundle
from node.consortium import Manifest
from scenarios import localnet as net
from scenarios.errors import StepFailedError
from scenarios.scenario.fields import (
    F,
    SpecContext,
    c_alias,
    c_body,
    c_bool,
    c_choice,
    c_enterprise,
    c_id,
    c_institution,
    c_int,
    c_list,
    c_new_record_id,
    c_node,
    c_number,
    c_query_ref,
    c_record_ref,
    c_str,
    check_mapping,
    typename,
)
from scenarios.scenario.marks import MarkedDoc, Path_
from scenarios.scenario.results import Check, QueryOutcome

if TYPE_CHECKING:
    from scenarios.scenario.runner import ScenarioRun
    from scenarios.scenario.spec import Step

__all__ = [
    "OBJECTION_ACTIONS",
    "OBJECTION_GENERAL_EXPECTATIONS",
    "OBJECTION_QUERY_EXPECTATIONS",
    "ObjectionSteps",
    "check_objection_general",
    "check_objection_query",
    "objection_semantics",
]

STATUSES = ("open", *OBJECTION_OUTCOMES)
CORRECTION_KINDS = ("amended", "withdrawn", "resolved")


def c_objection_ref(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> str | None:
    text = c_str(value, path, doc, ctx)
    if text is not None and text not in ctx.objections:
        doc.error(
            path,
            f"objection {text!r} is not filed by an earlier object step (filed: "
            f"{', '.join(ctx.objections) or 'none'})",
        )
        return None
    return text


def _c_correction(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> Any:
    return check_mapping(
        value,
        path,
        doc,
        ctx,
        {
            "id": F(c_new_record_id, True, docs="the correction's record id"),
            "outcome": F(c_choice(*CORRECTION_KINDS), default="amended"),
            "body": F(c_body, True),
            "source": F(c_id),
        },
        "a correction",
    )


OBJECTION_ACTIONS: dict[str, dict[str, F]] = {
    "object": {
        "as": F(c_alias, True, docs="the name later steps use for this objection"),
        "enterprise": F(c_enterprise, True),
        "holder": F(c_node, True, docs="the node holding the record"),
        "record": F(c_record_ref, True, docs="the record objected to"),
        "reason": F(c_str, True, docs="the enterprise's statement"),
    },
    "decide": {
        "objection": F(c_objection_ref, True),
        "outcome": F(c_choice(*OBJECTION_OUTCOMES), True),
        "verification": F(c_str, True, docs="what the holder checked"),
        "correction": F(_c_correction, docs="with outcome corrected: {id, outcome, body}"),
    },
    "advance_clock": {"days": F(c_number(0.0, 3650.0), True)},
    "credit_line": {
        "institution": F(c_institution, True),
        "enterprise": F(c_enterprise, True),
        "amount_minor": F(c_int(1), True, docs="the line, in fen (¥1 = 100)"),
        "action": F(c_choice("freeze", "restore"), True),
        "basis": F(c_query_ref, docs="the report the decision rests on"),
        "because": F(c_str),
    },
}


def objection_semantics(
    action: str, args: dict[str, Any], path: Path_, doc: MarkedDoc, ctx: SpecContext
) -> None:
    """Cross-field checks of the actions above, and what they define for later steps."""
    if action == "object":
        alias = args.get("as")
        if alias in ctx.objections:
            doc.error(path + ("as",), f"objection {alias!r} is already filed by an earlier step")
        elif alias:
            ctx.objections[alias] = ctx.step_index
    elif action == "decide":
        has = "correction" in args
        if args.get("outcome") == "corrected" and not has:
            doc.error(path, "a corrected outcome needs its correction: {id, outcome, body}")
        if has and args.get("outcome") != "corrected":
            doc.error(path + ("correction",), "only a corrected outcome carries a correction")
        cid = (args.get("correction") or {}).get("id")
        if cid:
            if cid in ctx.records:
                doc.error(
                    path + ("correction", "id"),
                    f"record id {cid!r} is already used in this scenario",
                )
            ctx.records[cid] = ""


def _c_status_map(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> Any:
    if not isinstance(value, dict) or not value:
        doc.error(path, f"must be a mapping of record ids to statuses, got {typename(value)}")
        return None
    out = {}
    for k, v in value.items():
        ref = c_record_ref(k, path + (k,), doc, ctx)
        got = c_choice(*STATUSES)(v, path + (k,), doc, ctx)
        if ref is not None and got is not None:
            out[ref] = got
    return out


OBJECTION_QUERY_EXPECTATIONS: dict[str, F] = {
    "disputed": F(c_list(c_record_ref), docs="the report marks these records disputed"),
    "not_disputed": F(c_list(c_record_ref), docs="in the report, not marked disputed"),
    "objection_status": F(_c_status_map, docs="{record: open|corrected|upheld|unverifiable}"),
}

OBJECTION_GENERAL_EXPECTATIONS: dict[str, F] = {
    "objection": F(
        lambda v, p, d, c: check_mapping(
            v,
            p,
            d,
            c,
            {
                "objection": F(c_objection_ref, True),
                "status": F(c_choice(*STATUSES, "refused")),
                "reason": F(c_str, docs="the refusal's reason, e.g. unknown-record"),
                "overdue": F(c_bool),
                "late": F(c_bool, docs="the outcome came after the deadline"),
            },
        ),
        docs="{objection, status, reason, overdue, late}",
    ),
    "overdue_objections": F(
        lambda v, p, d, c: check_mapping(
            v,
            p,
            d,
            c,
            {
                "include": F(c_list(c_objection_ref, min_items=0)),
                "exclude": F(c_list(c_objection_ref, min_items=0)),
            },
        ),
        docs="{include, exclude}: objections the nodes' status shows overdue",
    ),
    "clock": F(
        lambda v, p, d, c: check_mapping(v, p, d, c, {"advanced_days": F(c_number(0.0), True)}),
        docs="{advanced_days}: every node's clock is this far ahead of where the run found it",
    ),
    "credit_line": F(
        lambda v, p, d, c: check_mapping(
            v,
            p,
            d,
            c,
            {
                "institution": F(c_institution, True),
                "enterprise": F(c_enterprise, True),
                "state": F(c_choice("active", "frozen"), True),
                "amount_minor": F(c_int(1)),
            },
        ),
        docs="{institution, enterprise, state, amount_minor}",
    ),
}


# --- the runner's side -------------------------------------------------------------------------
class ObjectionSteps:
    """The actions above, as ``ScenarioRun`` methods (mixed in); the run provides these."""

    cons: net.Consortium
    manifest: Manifest
    tag: str
    queries: dict[str, QueryOutcome]
    record_ids: dict[str, str]
    objections: dict[str, dict[str, Any]]
    credit_lines: dict[tuple[str, str], dict[str, Any]]
    clock_base: int | None = None  # the network clock's offset before this run advanced it

    def uscc(self, ref: str) -> str:
        raise NotImplementedError

    def record_id(self, ref: str, uscc: str | None = None, node: str | None = None) -> str:
        raise NotImplementedError

    def objection_of(self, alias: str) -> dict[str, Any]:
        o = self.objections.get(alias)
        if o is None:
            raise StepFailedError(f"objection {alias!r} was not filed (its step failed)")
        return o

    def do_object(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        uscc = self.uscc(a["enterprise"])
        holder = a["holder"]
        record_id = self.record_id(a["record"], uscc, holder)
        body = net.objection_request(
            self.cons, uscc, holder, record_id, a["reason"], f"obj-{a['as']}-{self.tag}"
        )
        home = net.enterprise_home(self.cons, uscc)
        status, data = net.file_objection(self.cons, body, home)
        o: dict[str, Any] = {
            "objection_id": body["objection_id"],
            "uscc": uscc,
            "holder": holder,
            "home": home,
            "record_id": record_id,
            "http_status": status,
        }
        if status == 201 and isinstance(data, dict):
            o.update(status="open", due_at=data.get("due_at"), filed_at=data.get("filed_at"))
        else:
            o.update(
                status="refused",
                reason=str(data.get("reason") or "") if isinstance(data, dict) else "",
                detail=net.problem_sentence(home, status, data),
            )
        self.objections[a["as"]] = o
        return dict(o)

    def do_decide(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        o = self.objection_of(a["objection"])
        body: dict[str, Any] = {"outcome": a["outcome"], "verification": a["verification"]}
        c = a.get("correction")
        if c:
            actual = f"{c['id']}.r{self.tag}"
            body["correction"] = {
                "record_id": actual,
                "outcome": c.get("outcome", "amended"),
                "body": c["body"],
                "source": c.get("source") or f"{o['holder']}-objections",
            }
        status, data = net.decide_objection(self.cons, o["holder"], o["objection_id"], body)
        if status != 201 or not isinstance(data, dict):
            raise StepFailedError(net.problem_sentence(o["holder"], status, data))
        if c:
            self.record_ids[c["id"]] = body["correction"]["record_id"]
        o["status"] = a["outcome"]
        return {k: data.get(k) for k in ("objection_id", "outcome", "late", "delivered", "due_at")}

    def do_advance_clock(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        if self.clock_base is None:  # a reused network may already be ahead: count from here
            self.clock_base = _offsets_now(self.cons)
        offsets = net.advance_clock(self.cons, int(round(float(a["days"]) * 86400)))
        return {"days": a["days"], "offset_s": max(offsets.values()), "nodes": len(offsets)}

    def do_credit_line(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        key = (a["institution"], self.uscc(a["enterprise"]))
        basis = a.get("basis")
        negative: list[str] = []
        if basis:
            q = self.queries.get(basis)
            if q is None or q.status != "granted" or not q.bundle_verified or not q.bundle_path:
                raise StepFailedError(f"the basis {basis} is not a verified report")
            bundle = parse_json(Path(q.bundle_path).read_text("utf-8"), q.bundle_path)
            summary = verify_bundle(bundle, self.manifest)
            outcomes = _correction_outcomes(bundle)
            negative = [
                str(r["record_id"])
                for r in summary.current
                if _base_type(summary.history, r) in net.NEGATIVE_TYPES
                and outcomes.get((str(r["node_id"]), int(r["index"])), "amended") == "amended"
            ]
            if a["action"] == "freeze" and not negative:
                raise StepFailedError(f"report {basis} shows no negative record to freeze on")
            if a["action"] == "restore" and negative:
                raise StepFailedError(
                    f"report {basis} still shows negative records: {', '.join(negative)}"
                )
        state = "frozen" if a["action"] == "freeze" else "active"
        self.credit_lines[key] = {"state": state, "amount_minor": a["amount_minor"]}
        return {
            "institution": a["institution"],
            "enterprise": key[1],
            "state": state,
            "amount_minor": a["amount_minor"],
            "basis": basis,
            "negative_records": negative,
            "because": a.get("because"),
        }


def _correction_outcomes(bundle: Any) -> dict[tuple[str, int], str]:
    """(node, index) → outcome of every correction in a verified bundle: a ``resolved`` or
    ``withdrawn`` negative record is no longer in force, an ``amended`` one still is."""
    out = {}
    for h in bundle["report"]["holders"]:
        for item in h["records"]:
            entry = parse_entry(base64.b64decode(item["entry"]))
            if isinstance(entry, CorrectionEntry):
                out[(str(h["node_id"]), int(item["index"]))] = entry.outcome
    return out


def _offsets_now(cons: net.Consortium) -> int:
    infos = net.node_infos(cons)
    return max(int((i or {}).get("clock", {}).get("offset_s", 0)) for i in infos.values())


def _base_type(history: list[dict[str, Any]], row: dict[str, Any]) -> str:
    """The record type a correction chain started from."""
    by_id = {d["record_id"]: d for d in history}
    seen: set[str] = set()
    d = row
    while (
        d.get("kind") == "correction"
        and d.get("supersedes") in by_id
        and d["record_id"] not in seen
    ):
        seen.add(d["record_id"])
        d = by_id[d["supersedes"]]
    return str(d.get("record_type") or "correction")


# --- the checks -----------------------------------------------------------------------------------
def check_objection_query(
    run: ScenarioRun, step: Step, key: str, want: Any, q: QueryOutcome
) -> Check:
    line = step.expect_lines.get(key)

    def result(ok: bool, actual: Any, message: str = "") -> Check:
        return Check(step.id, key, want, actual, ok, "" if ok else message, line)

    if q.status != "granted" or not q.bundle_verified:
        return result(False, None, f"{key} needs a granted, verified report; it was {q.status}")
    marks = q.disputes
    if key == "disputed":
        ids = {r: run.record_id(r, q.uscc) for r in want}
        bad = [
            r for r, i in ids.items() if i not in q.current or not marks.get(i, {}).get("disputed")
        ]
        return result(not bad, marks, f"not marked disputed in the current view: {', '.join(bad)}")
    if key == "not_disputed":
        ids = {r: run.record_id(r, q.uscc) for r in want}
        bad = [r for r, i in ids.items() if i not in q.history or marks.get(i, {}).get("disputed")]
        return result(not bad, marks, f"missing or still marked disputed: {', '.join(bad)}")
    if key == "objection_status":
        got = {r: marks.get(run.record_id(r, q.uscc), {}).get("status") for r in want}
        return result(got == dict(want), got, f"expected objection statuses {want}, got {got}")
    return result(False, None, f"unknown expectation {key}")


def check_objection_general(run: ScenarioRun, step: Step, key: str, want: Any) -> Check:
    line = step.expect_lines.get(key)

    def result(ok: bool, actual: Any, message: str = "") -> Check:
        return Check(step.id, key, want, actual, ok, "" if ok else message, line)

    if key == "objection":
        o = run.objection_of(want["objection"])
        if o["status"] == "refused":
            got = {"status": "refused", "reason": o.get("reason")}
        else:
            data = net.show_objection(run.cons, o["home"], o["holder"], o["objection_id"])
            mark = data["status"]
            got = {
                "status": mark["status"],
                "overdue": bool(mark.get("overdue")),
                "late": bool(mark.get("late", False)),
                "signed_by": o["holder"],
                "verified_by": data.get("verified_by"),
            }
        bad = [
            k
            for k in ("status", "reason", "overdue", "late")
            if k in want and got.get(k) != want[k]
        ]
        return result(
            not bad,
            got,
            f"objection {want['objection']}: "
            + ", ".join(f"{k} is {got.get(k)!r}, not {want[k]!r}" for k in bad)
            + (f" ({o.get('detail')})" if o.get("detail") else ""),
        )
    if key == "overdue_objections":
        shown = set()
        for info in net.node_infos(run.cons).values():
            for row in (info or {}).get("objections", {}).get("overdue_ids", []):
                shown.add(str(row.get("objection_id")))
        ids = {
            alias: run.objection_of(alias)["objection_id"]
            for alias in [*want.get("include", []), *want.get("exclude", [])]
        }
        lacking = [a for a in want.get("include", []) if ids[a] not in shown]
        there = [a for a in want.get("exclude", []) if ids[a] in shown]
        return result(
            not lacking and not there,
            sorted(shown),
            "; ".join(
                s
                for s in (
                    f"not shown overdue: {', '.join(lacking)}" if lacking else "",
                    f"shown overdue but should not be: {', '.join(there)}" if there else "",
                )
                if s
            ),
        )
    if key == "clock":
        offsets = {
            n: int((i or {}).get("clock", {}).get("offset_s", -1))
            for n, i in net.node_infos(run.cons).items()
        }
        target = (run.clock_base or 0) + int(round(float(want["advanced_days"]) * 86400))
        bad = sorted(n for n, v in offsets.items() if v != target)
        return result(
            not bad,
            offsets,
            f"nodes whose clock is not {want['advanced_days']} days ahead: {', '.join(bad)}",
        )
    if key == "credit_line":
        line_state = run.credit_lines.get((want["institution"], run.uscc(want["enterprise"])))
        ok = line_state is not None and line_state["state"] == want["state"]
        if ok and "amount_minor" in want:
            ok = line_state is not None and line_state["amount_minor"] == want["amount_minor"]
        return result(ok, line_state, f"credit line is {line_state}, expected {want}")
    return result(False, None, f"unknown expectation {key}")
