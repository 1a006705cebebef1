"""Every expectation a scenario step can state, and the check that decides it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ledger import (
    LedgerError,
    ProofError,
    leaf_hash,
    parse_json,
    verify_consistency,
    verify_inclusion,
)
from node.bundle import verify_bundle, verify_checkpoint_note
from node.errors import BundleError
from scenarios import localnet as net
from scenarios.errors import StepFailedError
from scenarios.scenario.fields import (
    F,
    SpecContext,
    c_bool,
    c_choice,
    c_city,
    c_enterprise,
    c_institution,
    c_int,
    c_list,
    c_node,
    c_nodes_or_all,
    c_number,
    c_query_ref,
    c_record_ref,
    c_str,
    check_mapping,
)
from scenarios.scenario.marks import MarkedDoc, Path_
from scenarios.scenario.objections import (
    OBJECTION_GENERAL_EXPECTATIONS,
    OBJECTION_QUERY_EXPECTATIONS,
    check_objection_general,
    check_objection_query,
)
from scenarios.scenario.results import Check, QueryOutcome


# --- what each expectation accepts: the schema the scenario file is checked against ---
def _x_records(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    return check_mapping(
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


def _x_query_history(
    value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext
) -> dict[str, Any] | None:
    return check_mapping(
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


def _x_alarms(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    return check_mapping(
        value, path, doc, ctx, {"against": F(c_node, True), "witnesses_min": F(c_int(1), default=1)}
    )


def _x_refused(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    return check_mapping(
        value, path, doc, ctx, {"node": F(c_node, True), "by_min": F(c_int(1), default=1)}
    )


def _x_institutions(
    value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext
) -> dict[str, Any] | None:
    def registered(v: Any, p: Path_, d: MarkedDoc, c: SpecContext) -> Any:
        return "all" if v == "all" else c_int(0)(v, p, d, c)

    return check_mapping(
        value,
        path,
        doc,
        ctx,
        {
            "registered": F(registered, docs="'all' or a minimum count"),
            "include": F(c_list(c_institution)),
        },
    )


def _x_bundle(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    return check_mapping(
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


def _x_conflict(value: Any, path: Path_, doc: MarkedDoc, ctx: SpecContext) -> dict[str, Any] | None:
    return check_mapping(
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
    **OBJECTION_QUERY_EXPECTATIONS,  # disputed, not_disputed, objection_status
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
    **OBJECTION_GENERAL_EXPECTATIONS,  # objection, overdue_objections, clock, credit_line
}


# --- expectations -----------------------------------------------------------------------------------
def check_query(run: ScenarioRun, step: Step, key: str, want: Any, q: QueryOutcome) -> Check:
    if key in OBJECTION_QUERY_EXPECTATIONS:
        return check_objection_query(run, step, key, want, q)
    line = step.expect_lines.get(key)

    def result(ok: bool, actual: Any, message: str = "") -> Check:
        return Check(step.id, key, want, actual, ok, "" if ok else message, line)

    granted = q.status == "granted"
    not_granted = f"the query was {q.status}" + (
        f" ({q.reason or q.detail})" if q.status != "granted" else ""
    )
    if key == "status":
        return result(
            q.status == want,
            q.status,
            f"expected {want}, got {q.status}" + (f": {q.detail}" if q.detail else ""),
        )
    if key == "reason":
        ok = q.reason is not None and q.reason == str(want)  # a reason code, matched whole
        return result(
            ok, q.reason, f"expected denial reason {want!r}, got {q.reason!r} ({q.status})"
        )
    if key == "max_seconds":
        return result(
            q.seconds <= float(want),
            round(q.seconds, 3),
            f"took {q.seconds:.2f} s, more than {want} s",
        )
    if key == "bundle_verifies":
        got = bool(q.bundle_verified)
        return result(
            got == want,
            got,
            f"expected the bundle to {'verify' if want else 'fail'}; "
            + (q.bundle_error or not_granted if not got else "it verified"),
        )
    if key in ("receipts_on", "in_query_history"):
        if not q.query_id:
            return result(False, None, f"the query has no query id ({not_granted})")
        nodes = (
            list(want) if key == "receipts_on" else [run.homes.get(q.uscc, run.city_home(q.uscc))]
        )
        absent = key == "in_query_history" and not want  # the home node must hold no receipt
        found: dict[str, str] = {}
        for n in nodes:
            try:
                rows = [r for r in run.receipts(n, q.uscc) if r.get("query_id") == q.query_id]
            except (StepFailedError, net.NetworkError) as exc:
                found[n] = f"error: {exc}"
                continue
            found[n] = ", ".join(f"{r['role']} {r['outcome']}" for r in rows) or "none"
        if absent:
            bad = [n for n, v in found.items() if v != "none"]
            return result(
                not bad, found, f"query {q.query_id} is in the query history of {', '.join(bad)}"
            )
        bad = [n for n, v in found.items() if v == "none" or v.startswith("error")]
        return result(not bad, found, f"no receipt of query {q.query_id} on {', '.join(bad)}")
    if not granted:
        return result(False, None, f"{key} needs a granted report; {not_granted}")
    if key == "partial":
        return result(
            q.partial == want,
            q.partial,
            f"expected partial {want}, got {q.partial} (missing: "
            f"{', '.join(m['node_id'] for m in q.missing) or 'none'})",
        )
    if key == "missing":
        named = sorted(m["node_id"] for m in q.missing)
        return result(
            set(named) == set(want), named, f"expected missing {sorted(want)}, got {named}"
        )
    if key == "missing_reason":
        reasons = {m["node_id"]: m.get("reason", "") for m in q.missing}
        ok = bool(reasons) and all(str(want).lower() in r.lower() for r in reasons.values())
        return result(
            ok,
            reasons,
            f"expected every missing holder's reason to mention {want!r}, got {reasons or 'none missing'}",
        )
    if key == "holders_include":
        lacking = [n for n in want if n not in q.holders]
        return result(
            not lacking,
            sorted(q.holders),
            f"{', '.join(lacking)} did not answer (answered: "
            f"{', '.join(sorted(q.holders)) or 'none'})",
        )
    if key == "all_holders":
        known = run.holders.get(q.uscc, set())
        lacking = sorted(known - set(q.holders))
        ok = (not lacking) == bool(want)
        return result(
            ok,
            {"known": sorted(known), "answered": sorted(q.holders)},
            f"holders {', '.join(lacking)} did not answer" if lacking else "every holder answered",
        )
    if key == "cities_touched":
        touched = set(q.cities)
        lacking = [c for c in want if c not in touched]
        return result(
            not lacking,
            sorted(touched),
            f"did not touch {', '.join(lacking)} (touched: {', '.join(sorted(touched))})",
        )
    if key == "records_min":
        return result(
            len(q.history) >= int(want),
            len(q.history),
            f"{len(q.history)} records, fewer than {want}",
        )
    ids = {r: run.record_id(r, q.uscc) for r in want}
    if key == "records_present":
        lacking = [r for r, i in ids.items() if i not in q.current]
        return result(not lacking, q.current, f"not in the current view: {', '.join(lacking)}")
    if key == "records_absent":
        there = [r for r, i in ids.items() if i in q.current]
        return result(not there, q.current, f"still in the current view: {', '.join(there)}")
    if key == "superseded":
        bad = [r for r, i in ids.items() if i not in q.history or i in q.current]
        return result(
            not bad,
            {"current": q.current, "history": q.history},
            f"not superseded (must be in the history and out of the current view): {', '.join(bad)}",
        )
    if key == "history_includes":
        lacking = [r for r, i in ids.items() if i not in q.history]
        return result(not lacking, q.history, f"not in the history: {', '.join(lacking)}")
    return result(False, None, f"unknown expectation {key}")


if TYPE_CHECKING:
    from scenarios.scenario.runner import ScenarioRun
    from scenarios.scenario.spec import Step


def check_general(run: ScenarioRun, step: Step, key: str, want: Any) -> Check:
    if key in OBJECTION_GENERAL_EXPECTATIONS:
        return check_objection_general(run, step, key, want)
    line = step.expect_lines.get(key)

    def result(ok: bool, actual: Any, message: str = "") -> Check:
        return Check(step.id, key, want, actual, ok, "" if ok else message, line)

    cons = run.cons
    if key in ("nodes_up", "nodes_down", "no_alarms", "alarms", "refused"):
        infos = net.node_infos(cons)
        up = sorted(n for n, i in infos.items() if i)
        if key == "nodes_up":
            need = list(cons.node_ids) if want == "all" else list(want)
            down = [n for n in need if n not in up]
            return result(not down, up, f"not answering: {', '.join(down)}")
        if key == "nodes_down":
            alive = [n for n in want if n in up]
            return result(
                not alive,
                [n for n in cons.node_ids if n not in up],
                f"still answering: {', '.join(alive)}",
            )
        if key == "no_alarms":
            raised = {
                n: [a.get("node_id") for a in i.get("alarms", [])]
                for n, i in infos.items()
                if i and i.get("alarms")
            }
            return result(bool(not raised) == bool(want), raised, f"open alarms: {raised}")
        if key == "alarms":
            target = want["against"]
            witnesses = sorted(
                n
                for n, i in infos.items()
                if i
                and n != target
                and any(a.get("node_id") == target for a in i.get("alarms", []))
            )
            return result(
                len(witnesses) >= want["witnesses_min"],
                witnesses,
                f"{len(witnesses)} witnesses raised an alarm against {target} "
                f"({', '.join(witnesses) or 'none'}), fewer than {want['witnesses_min']}",
            )
        target = want["node"]
        by = sorted(
            n
            for n, i in infos.items()
            if i
            and any(p.get("node_id") == target and p.get("refused") for p in i.get("peers", []))
        )
        return result(
            len(by) >= want["by_min"],
            by,
            f"{len(by)} nodes refuse {target} ({', '.join(by) or 'none'}), "
            f"fewer than {want['by_min']}",
        )
    if key == "records":
        uscc = run.uscc(want["enterprise"])
        rows = run.node_records(want["node"], uscc, want.get("view", "current"))
        ids = [str(r["record_id"]) for r in rows]
        lacking = [
            r for r in want.get("present", []) if run.record_id(r, uscc, want["node"]) not in ids
        ]
        there = [r for r in want.get("absent", []) if run.record_id(r, uscc, want["node"]) in ids]
        msg = "; ".join(
            s
            for s in (
                f"missing {', '.join(lacking)}" if lacking else "",
                f"present but should not be: {', '.join(there)}" if there else "",
            )
            if s
        )
        return result(
            not lacking and not there,
            ids,
            f"{want['node']}'s {want.get('view', 'current')} view: {msg}",
        )
    if key == "query_history":
        uscc = run.uscc(want["enterprise"])
        node = want.get("node") or run.homes.get(uscc) or run.city_home(uscc)
        rows = run.receipts(node, uscc)
        by_id: dict[str, list[str]] = {}
        for r in rows:
            by_id.setdefault(str(r.get("query_id")), []).append(str(r.get("outcome")))
        problems = []
        seen = {}
        for alias in want["includes"]:
            q = run.queries.get(alias)
            if q is None or not q.query_id:
                problems.append(f"{alias} has no query id")
                continue
            outcomes = by_id.get(q.query_id, [])
            seen[alias] = outcomes
            expected = want.get("outcome") or (
                q.status if q.status in ("granted", "denied") else None
            )
            if not outcomes:
                problems.append(f"{alias} is not listed")
            elif expected and expected not in outcomes:
                problems.append(f"{alias} is listed as {', '.join(outcomes)}, not {expected}")
        return result(
            not problems,
            {"node": node, "queries": len(rows), "found": seen},
            f"{node}'s query history of {uscc}: " + "; ".join(problems),
        )
    if key == "institutions":
        insts = list(cons.institutions)

        def registered(inst: net.Institution) -> bool:
            # A busy node may be slow to answer: retry a transport failure before
            # calling the institution unregistered.
            for attempt in range(3):
                try:
                    r = run.http.get(
                        f"{cons.url(inst.home_node)}/v1/institutions/{inst.institution_id}",
                        timeout=30,
                    )
                except httpx.HTTPError:
                    time.sleep(1 + attempt)
                    continue
                return r.status_code == 200 and r.json().get("public_key") == inst.public_key
            return False

        with ThreadPoolExecutor(max_workers=16) as pool:
            found = dict(
                zip([i.institution_id for i in insts], pool.map(registered, insts), strict=True)
            )
        count = sum(found.values())
        problems = []
        reg = want.get("registered")
        if reg == "all" and count != len(insts):
            problems.append(
                f"{count} of {len(insts)} institutions are registered at their home node; not: "
                + ", ".join([i for i, ok in found.items() if not ok][:5])
            )
        elif isinstance(reg, int) and count < reg:
            problems.append(f"{count} institutions are registered, fewer than {reg}")
        lacking = [i for i in want.get("include", []) if not found.get(i)]
        if lacking:
            problems.append(f"not registered: {', '.join(lacking)}")
        return result(
            not problems, {"registered": count, "institutions": len(insts)}, "; ".join(problems)
        )
    if key == "bundle":
        return _check_bundle(run, step, want, result)
    if key == "checkpoint_conflict":
        return _check_conflict(run, want, result)
    return result(False, None, f"unknown expectation {key}")


def _load_bundle(run: ScenarioRun, alias: str) -> tuple[QueryOutcome, dict[str, Any]]:
    q = run.queries.get(alias)
    if q is None or not q.bundle_path:
        raise StepFailedError(
            f"query {alias} has no saved bundle ({q.status if q else 'it did not run'})"
        )
    return q, parse_json(Path(q.bundle_path).read_text("utf-8"), q.bundle_path)


def _check_bundle(
    run: ScenarioRun, step: Step, want: dict[str, Any], result: Callable[..., Check]
) -> Check:
    q, bundle = _load_bundle(run, want["query"])
    try:
        verify_bundle(bundle, run.manifest)
        ok, why = True, "verifies"
    except (BundleError, LedgerError, KeyError, TypeError, ValueError) as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    node = want.get("with_current_checkpoint_of")
    if node and ok:
        # The holder's records in the bundle, checked against the tree it serves now: fresh inclusion
        # proofs of the same entries at the same indices against its current signed checkpoint.
        sections = [h for h in bundle["report"]["holders"] if h["node_id"] == node]
        if not sections:
            return result(False, None, f"bundle {want['query']} holds no records of {node}")
        header = verify_checkpoint_note(
            run.manifest, node, run.checkpoint(node), run.manifest.algorithm
        )
        import base64

        failed = []
        for item in sections[0]["records"]:
            index = int(item["index"])
            entry_b = base64.b64decode(item["entry"])
            proof = run.proof(node, "/v1/proofs/inclusion", {"index": index, "size": header.size})
            try:
                if proof is None:
                    raise ProofError(f"{node} gives no inclusion proof for index {index}")
                verify_inclusion(
                    leaf_hash(entry_b, run.manifest.algorithm),
                    index,
                    header.size,
                    proof,
                    header.root,
                    run.manifest.algorithm,
                )
            except (ProofError, LedgerError):
                failed.append(index)
        ok = not failed
        why = (
            f"all {len(sections[0]['records'])} records of {node} are in its current tree (size "
            f"{header.size})"
            if ok
            else f"records at {failed} of {node} are not in its current tree (size {header.size})"
        )
    return result(
        ok == want["verifies"],
        why,
        f"expected the bundle to {'verify' if want['verifies'] else 'fail'}: {why}",
    )


def _check_conflict(run: ScenarioRun, want: dict[str, Any], result: Callable[..., Check]) -> Check:
    node = want["node"]
    q, bundle = _load_bundle(run, want["bundle"])
    sections = [h for h in bundle["report"]["holders"] if h["node_id"] == node]
    if not sections:
        return result(False, None, f"bundle {want['bundle']} holds no checkpoint of {node}")
    alg = run.manifest.algorithm
    old = verify_checkpoint_note(run.manifest, node, sections[0]["checkpoint"], alg)
    new = verify_checkpoint_note(run.manifest, node, run.checkpoint(node), alg)
    if old.size == new.size:
        conflict = old.root != new.root
        why = f"both signed at size {old.size}, {'different' if conflict else 'the same'} roots"
    elif old.size < new.size:
        proof = run.proof(node, "/v1/proofs/consistency", {"old": old.size, "new": new.size})
        try:
            if proof is None:
                raise ProofError("no consistency proof served")
            verify_consistency(old.size, new.size, old.root, new.root, proof, alg)
            conflict, why = False, f"size {old.size} → {new.size} is consistent"
        except (ProofError, LedgerError) as exc:
            conflict, why = (
                True,
                f"no valid consistency proof from size {old.size} to {new.size}: {exc}",
            )
    else:
        conflict, why = (
            True,
            f"{node} now signs a smaller tree ({new.size}) than it signed before ({old.size})",
        )
    return result(conflict, why, f"expected {node}'s checkpoints to conflict: {why}")
