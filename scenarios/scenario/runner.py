"""Run a scenario against a network, check every expectation, write its report.

:func:`run_scenario` starts the scenario's network in a consortium directory
— local processes, or with ``target="docker"`` one container per node made by
``creditchain compose`` — (or reuses the one running there when its topology
is the same), registers
the scenario's extra institutions, then runs the steps in order. Each step's
action is timed; its expectations are checked right after it (``within: N``
re-checks the non-query ones until they hold or N seconds pass). A step whose
action fails is recorded as failed, its expectations as not met, and the run
goes on. :mod:`scenarios.scenario.report` turns the result into ``results.json``,
``summary.md`` and charts.

Invariants:

* record ids a scenario ingests are made unique per run (``<id>.r<tag>``), so a
  scenario can run again on the same network; expectations use the ids as
  written in the file and the runner maps them;
* nodes a run stopped or killed and did not restart are restarted when the
  run ends, so a shared network is left whole (a rogue node's rewritten
  history, by design, stays);
* every report bundle is verified offline against the manifest checked with
  the consortium root key, and saved under ``bundles/`` of the report directory.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ledger import (
    LedgerError,
    make_uscc,
)
from ledger.uscc import SERIAL_LIMIT
from node.bundle import verify_bundle
from node.consortium import Manifest, load_manifest
from node.errors import BundleError, ConfigError, NodeError
from scenarios import localnet as net
from scenarios.errors import RunnerError, StepFailedError
from scenarios.model.workloads import SyntheticData
from scenarios.scenario.expectations import check_general, check_query
from scenarios.scenario.objections import ObjectionSteps
from scenarios.scenario.report import write_report
from scenarios.scenario.results import Check, QueryOutcome, RunResult, StepResult
from scenarios.scenario.rogue import rewrite_history
from scenarios.scenario.setup import (
    default_dir,
    ensure_docker_network,
    ensure_network,
    open_alarms,
    register_institution,
    wait_links_mirrored,
)
from scenarios.scenario.spec import QUERY_EXPECTATIONS, Scenario, Step, parse_time_offset
from scenarios.scenario.targets import DockerTarget, LocalTarget

__all__ = [
    "Check",
    "QueryOutcome",
    "RunResult",
    "RunnerError",
    "StepResult",
    "default_dir",
    "ensure_docker_network",
    "ensure_network",
    "open_alarms",
    "rewrite_history",
    "run_scenario",
    "wait_links_mirrored",
]


# --- running -------------------------------------------------------------------------------------
@dataclass
class _Auth:
    authorization_id: str
    institution: str
    home_node: str
    uscc: str
    purposes: list[str]
    not_before: str
    not_after: str


def _when(text: str, now: datetime) -> str:
    kind = parse_time_offset(text)
    if kind is None:
        raise StepFailedError(f"bad time {text!r}")
    if kind[0] == "time":
        return text
    return (now + timedelta(seconds=kind[1])).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScenarioRun(ObjectionSteps):
    def __init__(
        self,
        spec: Scenario,
        cons: net.Consortium,
        out: Path,
        echo: Callable[[str], None],
        target: LocalTarget | DockerTarget | None = None,
    ) -> None:
        self.spec = spec
        self.cons = cons
        self.target = target or LocalTarget(cons, spec.timeouts["startup"])
        self.out = out
        self.echo = echo
        self.tag = secrets.token_hex(3)
        self.manifest: Manifest = self._trusted_manifest()
        self.data: SyntheticData = net.synthetic_data(cons)
        self.usccs: dict[str, str] = {}
        self.homes: dict[str, str] = {}  # uscc → the enterprise's home node
        self.holders: dict[str, set[str]] = {}  # uscc → nodes known to hold its records
        self.record_ids: dict[str, str] = {}  # logical id → id on the ledger
        self.auths: dict[str, _Auth] = {}
        self.queries: dict[str, QueryOutcome] = {}
        self.disturbed: set[str] = set()  # nodes this run stopped and has not restarted
        self.rogues: list[str] = []
        self.objections: dict[str, dict[str, Any]] = {}  # alias → filing and status
        self.credit_lines: dict[tuple[str, str], dict[str, Any]] = {}  # (institution, uscc)
        self.http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        self.http.close()

    def _trusted_manifest(self) -> Manifest:
        try:
            return load_manifest(self.cons.manifest_path, root_key=self.cons.root_public_key())
        except ConfigError as exc:
            raise RunnerError(f"the consortium manifest does not verify: {exc}") from exc

    # --- names ---------------------------------------------------------------------------------
    def resolve_enterprises(self) -> None:
        for name, e in self.spec.named.items():
            where = f"enterprises.named.{name} (line {e.line})"
            if e.uscc:
                uscc = e.uscc
                city = self.cons.topology.city(e.city) if e.city else None
                home = city.node_ids[0] if city else self.cons.node_ids[0]
                holders: set[str] = set()
            elif e.new:
                city = self.cons.topology.city(str(e.city))
                uscc = make_uscc(city.admin_code, secrets.randbelow(SERIAL_LIMIT)).code
                home = e.node or city.node_ids[0]
                holders = set()
            elif e.index is not None:
                if e.index >= self.data.counts[str(e.city)]:
                    raise RunnerError(
                        f"{where}: {e.city} has {self.data.counts[str(e.city)]} enterprises in this "
                        f"network, no index {e.index}"
                    )
                ent = self.data.enterprise(str(e.city), e.index)
                uscc, home = ent.uscc, ent.home_node
                holders = self.actual_holders(uscc, self.data.holders(str(e.city), e.index))
            else:
                found = None
                n = 0
                for i in range(self.data.counts[str(e.city)]):
                    hs = self.data.holders(str(e.city), i)
                    if len({self.cons.topology.city_of_node(h).code for h in hs}) < e.min_cities:
                        continue
                    # The synthetic plan names a branch node even when the branch drew no
                    # records; count only enterprises whose holders really hold some.
                    ent = self.data.enterprise(str(e.city), i)
                    real = self.actual_holders(ent.uscc, hs)
                    if len({self.cons.topology.city_of_node(h).code for h in real}) < e.min_cities:
                        continue
                    if n == e.pick:
                        found = (ent, real)
                        break
                    n += 1
                if found is None:
                    raise RunnerError(
                        f"{where}: {e.city} has fewer than {(e.pick or 0) + 1} enterprises with records "
                        f"in {e.min_cities} cities"
                    )
                uscc, home, holders = found[0].uscc, found[0].home_node, found[1]
            self.usccs[name] = uscc
            self.homes[uscc] = home
            self.holders.setdefault(uscc, set()).update(holders)

    def actual_holders(self, uscc: str, planned: Sequence[str]) -> set[str]:
        """The planned holders that do hold records of ``uscc`` (asked as each node's operator)."""
        out = set()
        for node in planned:
            try:
                if self.node_records(node, uscc, "history"):
                    out.add(node)
            except (StepFailedError, net.NetworkError) as exc:
                raise RunnerError(f"cannot read {node}'s records of {uscc}: {exc}") from exc
        return out

    def uscc(self, ref: str) -> str:
        if ref in self.usccs:
            return self.usccs[ref]
        self.homes.setdefault(ref, self.city_home(ref))
        self.holders.setdefault(ref, set())
        return ref

    def city_home(self, uscc: str) -> str:
        admin = uscc[2:8]
        for c in self.cons.topology.cities:
            if c.admin_code == admin:
                return c.node_ids[0]
        return self.cons.node_ids[0]

    def record_id(self, ref: str, uscc: str | None = None, node: str | None = None) -> str:
        if ref in self.record_ids:
            return self.record_ids[ref]
        try:
            return ref.format(uscc=uscc or "", node=node or "")
        except (KeyError, IndexError, ValueError):
            return ref

    def institution(self, inst_id: str) -> net.Institution:
        try:
            return self.cons.institution(inst_id)
        except net.NetworkError as exc:
            raise StepFailedError(str(exc)) from exc

    # --- node access -------------------------------------------------------------------------------
    def up_nodes(self) -> dict[str, dict[str, Any]]:
        return {n: i for n, i in net.node_infos(self.cons).items() if i}

    def receipts(self, node: str, uscc: str) -> list[dict[str, Any]]:
        with net.operator_client(self.cons, node) as client:
            status, data = client.call(node, "GET", f"/v1/enterprises/{uscc}/queries")
        if status != 200:
            raise StepFailedError(net.problem_sentence(node, status, data))
        return list(data.get("queries", []))

    def node_records(self, node: str, uscc: str, view: str) -> list[dict[str, Any]]:
        with net.operator_client(self.cons, node) as client:
            status, data = client.call(node, "GET", f"/v1/enterprises/{uscc}/records?view={view}")
        if status != 200:
            raise StepFailedError(net.problem_sentence(node, status, data))
        return list(data.get("records", []))

    def checkpoint(self, node: str) -> str:
        try:
            r = self.http.get(self.cons.url(node) + "/v1/checkpoint")
        except httpx.HTTPError as exc:
            raise StepFailedError(f"{node} does not answer: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise StepFailedError(f"{node} answered {r.status_code} for its checkpoint")
        return r.text

    def proof(self, node: str, path: str, params: dict[str, int]) -> list[bytes] | None:
        import base64

        try:
            r = self.http.get(self.cons.url(node) + path, params=params)
        except httpx.HTTPError as exc:
            raise StepFailedError(f"{node} does not answer: {type(exc).__name__}") from exc
        if r.status_code != 200:
            return None
        return [base64.b64decode(p) for p in r.json()["proof"]]

    def wait_links_mirrored(
        self, timeout_s: float, *, node: str | None = None, size: int | None = None
    ) -> float:
        return wait_links_mirrored(self.cons, timeout_s, node=node, size=size)

    # --- actions -------------------------------------------------------------------------------
    def do_ingest(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        now = datetime.now(UTC).replace(microsecond=0)
        city = self.cons.topology.city_of_node(node).code
        records = []
        mapping = {}
        for r in a["records"]:
            uscc = self.uscc(r["enterprise"])
            actual = f"{r['id']}.r{self.tag}"
            mapping[r["id"]] = actual
            records.append(
                {
                    "uscc": uscc,
                    "record_type": r["type"],
                    "record_id": actual,
                    "source": r.get("source") or f"{city}-scenario",
                    "observed_at": _when(r["observed_at"], now),
                    "body": r["body"],
                }
            )
        return self._ingest(node, records, mapping, a.get("mirror", True))

    def do_correct(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        now = datetime.now(UTC).replace(microsecond=0)
        uscc = self.uscc(a["enterprise"])
        actual = f"{a['id']}.r{self.tag}"
        supersedes = self.record_id(a["supersedes"], uscc, node)
        city = self.cons.topology.city_of_node(node).code
        record = {
            "uscc": uscc,
            "record_id": actual,
            "supersedes": supersedes,
            "outcome": a["outcome"],
            "source": a.get("source") or f"{city}-scenario",
            "observed_at": _when(a["observed_at"], now),
            "body": a["body"],
        }
        return self._ingest(node, [record], {a["id"]: actual}, a.get("mirror", True))

    def _ingest(
        self, node: str, records: list[dict[str, Any]], mapping: dict[str, str], mirror: bool
    ) -> dict[str, Any]:
        with net.operator_client(self.cons, node) as client:
            status, data = client.call(node, "POST", "/v1/ingest", {"records": records})
        if status not in (200, 201, 202):
            raise StepFailedError(net.problem_sentence(node, status, data))
        self.record_ids.update(mapping)
        for r in records:
            self.holders.setdefault(r["uscc"], set()).add(node)
        detail: dict[str, Any] = {
            "node": node,
            "records": [r["record_id"] for r in records],
            "size": data.get("size"),
        }
        if mirror:
            detail["mirror_seconds"] = round(
                self.wait_links_mirrored(
                    self.spec.timeouts["mirror"], node=node, size=int(data.get("size") or 0)
                ),
                2,
            )
        return detail

    def _file_auth(
        self,
        inst: net.Institution,
        uscc: str,
        purposes: Sequence[str],
        valid_from: str,
        valid_until: str,
    ) -> _Auth:
        now = datetime.now(UTC).replace(microsecond=0)
        not_before, not_after = _when(valid_from, now), _when(valid_until, now)
        auth_id = f"auth-{inst.institution_id}-{uscc}-{secrets.token_hex(3)}"
        text = net.consent_document(uscc, inst, purposes, not_before, not_after, auth_id)
        import hashlib

        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        consent = self.cons.dir / "consents" / f"{auth_id}.txt"
        net.write_text_atomic(consent, text, private=True)
        body, _ = net.authorization_request(
            self.cons, auth_id, uscc, inst.institution_id, purposes, not_before, not_after, digest
        )
        with net.NodeClient(self.cons, f"inst:{inst.institution_id}", inst.key()) as client:
            status, data = client.call(inst.home_node, "POST", "/v1/authorizations", body)
        if status != 201:
            raise StepFailedError(
                f"filing the authorization failed: "
                f"{net.problem_sentence(inst.home_node, status, data)}"
            )
        return _Auth(
            auth_id,
            inst.institution_id,
            inst.home_node,
            uscc,
            list(purposes),
            not_before,
            not_after,
        )

    def do_authorize(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        inst = self.institution(a["institution"])
        auth = self._file_auth(
            inst, self.uscc(a["enterprise"]), a["purposes"], a["valid_from"], a["valid_until"]
        )
        self.auths[a["as"]] = auth
        return dataclasses.asdict(auth)

    def do_revoke(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        auth = self.auths.get(a["authorization"])
        if auth is None:
            raise StepFailedError(
                f"authorization {a['authorization']!r} was not filed (its step failed)"
            )
        inst = self.institution(auth.institution)
        if a.get("by") == "operator":
            client = net.NodeClient(
                self.cons, f"node:{auth.home_node}", self.cons.node_key(auth.home_node)
            )
        else:
            client = net.NodeClient(self.cons, f"inst:{inst.institution_id}", inst.key())
        with client:
            status, data = client.call(
                auth.home_node,
                "POST",
                f"/v1/authorizations/{auth.authorization_id}/revocation",
                {"reason": a["reason"]},
            )
        if status != 201:
            raise StepFailedError(net.problem_sentence(auth.home_node, status, data))
        return {"authorization_id": auth.authorization_id, "revoked_at": data.get("revoked_at")}

    def do_query(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        inst = self.institution(a["institution"])
        uscc = self.uscc(a["enterprise"])
        ref = a.get("authorization", "auto")
        if ref == "auto":
            auth_id = self._file_auth(inst, uscc, [a["purpose"]], "now", "+365d").authorization_id
        elif ref == "none":
            auth_id = f"never-filed-{self.tag}-{step.index}"
        elif isinstance(ref, dict):
            auth_id = ref["id"]
        else:
            if ref not in self.auths:
                raise StepFailedError(f"authorization {ref!r} was not filed (its step failed)")
            auth_id = self.auths[ref].authorization_id
        q = QueryOutcome(
            step.alias,
            step.id,
            inst.institution_id,
            inst.home_node,
            a["enterprise"],
            uscc,
            a["purpose"],
            auth_id,
        )
        self.queries[q.alias] = q
        q.cities = {self.cons.topology.city_of_node(inst.home_node).code: "home"}
        t0 = time.perf_counter()
        try:
            with net.NodeClient(
                self.cons,
                f"inst:{inst.institution_id}",
                inst.key(),
                timeout_s=self.spec.timeouts["query"],
            ) as client:
                status, data = client.call(
                    inst.home_node,
                    "POST",
                    "/v1/reports",
                    {"uscc": uscc, "purpose": a["purpose"], "authorization_id": auth_id},
                )
        except net.NetworkError as exc:
            q.seconds = time.perf_counter() - t0
            q.status, q.detail = "error", str(exc)
            return self._query_detail(q)
        q.seconds = time.perf_counter() - t0
        q.http_status = status
        if status == 200 and isinstance(data, dict):
            q.status = "granted"
            self._read_bundle(q, data)
        elif (
            status == 403
            and isinstance(data, dict)
            and str(data.get("type", "")).endswith("authorization-invalid")
        ):
            q.status = "denied"
            q.reason = str(data.get("reason") or "")
            q.detail = str(data.get("detail") or "")
            m = re.search(r"query ([0-9a-f]{16,64})", q.detail)
            q.query_id = m.group(1) if m else None
        else:
            q.status = "error"
            q.detail = net.problem_sentence(inst.home_node, status, data)
            q.reason = (
                str(data.get("type", "")).rsplit(":", 1)[-1] if isinstance(data, dict) else None
            )
        return self._query_detail(q)

    def _query_detail(self, q: QueryOutcome) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(q).items() if k not in ("current", "history")}

    def _read_bundle(self, q: QueryOutcome, bundle: dict[str, Any]) -> None:
        path = self.out / "bundles" / f"{q.alias}.json"
        net.write_json(path, bundle, private=True)
        q.bundle_path = str(path)
        report = bundle.get("report", {})
        q.query_id = str(report.get("query_id") or "") or None
        try:
            summary = verify_bundle(bundle, self.manifest)
            q.bundle_verified = True
            q.partial = summary.partial
            q.missing = [dict(m) for m in summary.missing]
            q.holders = dict(summary.holders)
            q.current = [str(r["record_id"]) for r in summary.current]
            q.history = [str(r["record_id"]) for r in summary.history]
            q.disputes = {
                str(r["record_id"]): {
                    "disputed": bool(r.get("disputed")),
                    "status": r["objection"]["status"],
                    "late": bool(r["objection"].get("late", False)),
                }
                for r in summary.history
                if r.get("objection")
            }
        except (BundleError, LedgerError, KeyError, TypeError, ValueError, AttributeError) as exc:
            q.bundle_verified = False
            q.bundle_error = f"{type(exc).__name__}: {exc}"
            q.partial = bool(report.get("partial"))
            q.missing = [dict(m) for m in report.get("missing", [])]
            q.holders = {
                str(h.get("node_id")): len(h.get("records", [])) for h in report.get("holders", [])
            }
        topo = self.cons.topology
        for node_id in q.holders:
            q.cities[topo.city_of_node(node_id).code] = "answered"
        for m in q.missing:
            c = topo.city_of_node(str(m.get("node_id"))).code
            if q.cities.get(c) != "answered":
                q.cities[c] = "missing"

    def do_register(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        city = self.cons.topology.city(a["city"])
        node = a.get("node") or city.node_ids[0]
        inst = register_institution(
            self.cons,
            a["institution"],
            a.get("name") or f"{city.name} scenario institution {a['institution']}",
            city.code,
            node,
            a["purposes"],
        )
        self.cons = dataclasses.replace(self.cons, institutions=self.cons.institutions + (inst,))
        return {"institution": inst.institution_id, "node": node, "public_key": inst.public_key}

    def _fault(self, node: str, kind: str) -> dict[str, Any]:
        detail = self.target.fault(node, kind)
        self.disturbed.add(node)
        return detail

    def do_stop(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "stop")

    def do_kill(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "kill")

    def do_pause(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "pause")

    def do_partition(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "partition")

    def do_restart(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        t0 = time.monotonic()
        detail: dict[str, Any] = self.target.recover(node)
        self.disturbed.discard(node)
        detail["healthy_seconds"] = round(time.monotonic() - t0, 2)
        if a.get("mirror", True):
            detail["mirror_seconds"] = round(
                self.wait_links_mirrored(self.spec.timeouts["mirror"]), 2
            )
        return detail

    def do_rogue(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        alter = {self.record_id(r["record"], node=node): r["body"] for r in a.get("alter") or []}
        remove = {self.record_id(r, node=node) for r in a.get("remove") or []}
        detail = self.target.rewrite(
            node,
            lambda path: rewrite_history(
                self.cons, node, alter, remove, a.get("pad"), tag=self.tag, path=path
            ),
        )
        self.rogues.append(node)
        return detail

    def do_wait_mirrored(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return {
            "seconds": round(
                self.wait_links_mirrored(a.get("timeout") or self.spec.timeouts["mirror"]), 2
            )
        }

    def do_wait(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        time.sleep(float(a["seconds"]))
        return {"slept": a["seconds"]}

    def do_check(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return {}

    def restore(self) -> list[str]:
        notes = []
        running = self.target.running()
        for node in sorted(self.disturbed):
            if node in running:
                continue
            try:
                self.target.recover(node)
                notes.append(f"brought back {node}, which the scenario left down")
            except (StepFailedError, net.NetworkError) as exc:
                notes.append(f"could not bring back {node}: {exc}")
        return notes


# --- the run ------------------------------------------------------------------------------------------
def _run_step(run: ScenarioRun, step: Step) -> StepResult:
    res = StepResult(
        step.index,
        step.id,
        step.action,
        step.line,
        step.note,
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    t0 = time.perf_counter()
    try:
        res.detail = getattr(run, f"do_{step.action}")(step, step.args)
    except (StepFailedError, net.NetworkError, NodeError, LedgerError, OSError) as exc:
        res.ok, res.error = False, str(exc)
    except (
        Exception
    ) as exc:  # a bug in the runner or an answer it cannot read: keep going, keep the evidence
        res.ok, res.error = False, f"{type(exc).__name__}: {exc}"
        res.traceback = traceback.format_exc()
    res.seconds = time.perf_counter() - t0
    if not res.ok:
        res.checks.append(
            Check(step.id, "step", "completes", res.error, False, res.error or "failed", step.line)
        )
    q = run.queries.get(step.alias) if step.action == "query" else None
    query_keys = [k for k in step.expect if step.action == "query" and k in _QUERY_KEYS]
    general = [k for k in step.expect if k not in query_keys]
    if q is not None:
        for k in query_keys:
            res.checks.append(_safe(partial(check_query, run, step, k, step.expect[k], q), step, k))
    else:
        for k in query_keys:
            res.checks.append(
                Check(
                    step.id,
                    k,
                    step.expect[k],
                    None,
                    False,
                    "not checked: the query did not run",
                    step.expect_lines.get(k),
                )
            )
    deadline = time.monotonic() + (step.within or 0.0)
    while True:
        checks = [
            _safe(partial(check_general, run, step, k, step.expect[k]), step, k) for k in general
        ]
        if all(c.ok for c in checks) or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    res.checks.extend(checks)
    return res


def _safe(fn: Callable[[], Check], step: Step, key: str) -> Check:
    try:
        return fn()
    except (
        StepFailedError,
        net.NetworkError,
        NodeError,
        LedgerError,
        OSError,
        KeyError,
        ValueError,
    ) as exc:
        return Check(
            step.id,
            key,
            step.expect.get(key),
            None,
            False,
            f"could not check: {exc}",
            step.expect_lines.get(key),
        )


_QUERY_KEYS = frozenset(QUERY_EXPECTATIONS)


@contextmanager
def _closing(run: ScenarioRun) -> Iterator[ScenarioRun]:
    try:
        yield run
    finally:
        run.close()


def run_scenario(
    spec: Scenario,
    *,
    directory: Path | None = None,
    out: Path | None = None,
    target: str = "local",
    echo: Callable[[str], None] = lambda s: None,
    progress: bool = False,
    down_after: bool = False,
    fresh: bool = False,
) -> RunResult:
    """Run every step of ``spec`` and write its report to ``out``.

    Raises:
        RunnerError: the target is not supported, or the network cannot be started or reused.
    """
    if target not in ("local", "docker"):
        raise RunnerError(f"--target must be local or docker, got {target!r}")
    directory = Path(directory) if directory is not None else default_dir(spec)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out is not None else Path("scenario-results") / f"{spec.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tgt: LocalTarget | DockerTarget
    if target == "docker":
        cons, info = ensure_docker_network(spec, directory, echo=echo, fresh=fresh)
        tgt = DockerTarget(cons, spec.timeouts["startup"], out)
    else:
        cons, info = ensure_network(spec, directory, echo=echo, progress=progress, fresh=fresh)
        tgt = LocalTarget(cons, spec.timeouts["startup"])
    for note in info.get("notes", []):
        echo(f"note: {note}")
    try:
        extra = []
        for e in spec.institutions:
            try:
                extra.append(
                    register_institution(cons, e.institution_id, e.name, e.city, e.node, e.purposes)
                )
            except (StepFailedError, net.NetworkError) as exc:
                raise RunnerError(f"institutions line {e.line}: {exc}") from exc
        known = {i.institution_id for i in cons.institutions}
        cons = dataclasses.replace(
            cons,
            institutions=cons.institutions
            + tuple(i for i in extra if i.institution_id not in known),
        )
        run = ScenarioRun(spec, cons, out, echo, tgt)
        result = RunResult(spec, out, info, run.tag, started)
        with _closing(run):
            run.resolve_enterprises()
            result.network["enterprises_named"] = dict(run.usccs)
            for step in spec.steps:
                res = _run_step(run, step)
                result.steps.append(res)
                passed = sum(c.ok for c in res.checks)
                mark = "ok" if res.passed else "FAIL"
                what = _step_summary(step, res, run)
                echo(
                    f"[{step.index + 1}/{len(spec.steps)}] {step.id}: {what} ({res.seconds:.2f} s) "
                    f"{passed}/{len(res.checks)} checks {mark}"
                )
            result.queries = list(run.queries.values())
            result.cleanup = run.restore()
            result.network["record_ids"] = dict(run.record_ids)
            result.network["rogues"] = list(run.rogues)
    finally:
        if down_after:
            with suppress(net.NetworkError):
                tgt.down()
    result.seconds = time.monotonic() - t0
    write_report(result)
    return result


def _step_summary(step: Step, res: StepResult, run: ScenarioRun) -> str:
    if not res.ok:
        return f"{step.action} failed: {res.error}"
    if step.action == "query":
        q = run.queries.get(step.alias)
        if q is None:
            return "query"
        extra = f", missing {', '.join(m['node_id'] for m in q.missing)}" if q.missing else ""
        why = f" ({q.reason})" if q.reason else ""
        return f"query {q.status}{why}, {len(q.holders)} holders, {len(q.history)} records{extra}"
    if step.action in ("ingest", "correct"):
        return f"{step.action} {len(res.detail.get('records', []))} record(s) at {res.detail.get('node')}"
    if step.action == "rogue":
        return (
            f"{res.detail.get('node')} rewrote its history: {res.detail.get('old_size')} → "
            f"{res.detail.get('new_size')} "
            f"entries, altered {len(res.detail.get('altered', []))}, removed "
            f"{len(res.detail.get('removed', []))}"
        )
    return step.action
