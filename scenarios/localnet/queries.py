"""What an institution does on a running network.

File an authorization, ask for a report, verify its bundle offline; sample enterprises to ask
about.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import (
    PURPOSES,
    InvalidUsccError,
    JsonDepthError,
    Ledger,
    LedgerError,
    parse_json,
    parse_uscc,
)
from node.bundle import (
    BundleSummary,
    VerificationStep,
    bundle_manifest_version,
    verification_steps,
    verify_bundle,
)
from node.consortium import Manifest, ManifestHistory, load_manifest, parse_history
from node.errors import BundleError, ConfigError
from scenarios.errors import NetworkError
from scenarios.localnet.client import NodeClient, problem_sentence, register_institutions
from scenarios.localnet.consortium import (
    Consortium,
    Institution,
    read_json,
    read_state,
    write_json,
    write_text_atomic,
)
from scenarios.model.workloads import SyntheticData


# --- queries ---------------------------------------------------------------------------
@dataclass
class QueryResult:
    bundle: dict[str, Any]
    summary: BundleSummary
    path: Path
    authorization: dict[str, Any] | None  # set when this call filed a new authorization
    seconds: float


def consent_document(
    uscc: str,
    inst: Institution,
    purposes: Sequence[str],
    not_before: str,
    not_after: str,
    authorization_id: str,
) -> str:
    return (
        "AUTHORIZATION TO QUERY CREDIT INFORMATION (simulated)\n"
        f"Authorization id: {authorization_id}\n"
        f"Enterprise (unified social credit code): {uscc}\n"
        f"authorizes: {inst.name} ({inst.institution_id})\n"
        "to obtain its credit records from the Yangtze River Delta credit chain\n"
        f"for the purposes: {', '.join(purposes)}\n"
        f"valid from {not_before} until {not_after}.\n"
        "Signed and sealed on behalf of the enterprise (synthetic document for the simulator).\n"
    )


def authorization_request(
    cons: Consortium,
    authorization_id: str,
    uscc: str,
    institution_id: str,
    purposes: Sequence[str],
    not_before: str,
    not_after: str,
    document_digest: str,
) -> tuple[dict[str, Any], str]:
    """A ``POST /v1/authorizations`` body with the enterprise's consent, and who signed it.

    The enterprise consents through its city's registry (``Consortium.consent``);
    the institution only files the request.
    """
    body: dict[str, Any] = {
        "authorization_id": authorization_id,
        "uscc": uscc,
        "institution_id": institution_id,
        "purposes": list(purposes),
        "not_before": not_before,
        "not_after": not_after,
        "document_digest": document_digest,
    }
    body["consent"], signer = cons.consent(body)
    return body, signer


def file_authorization(
    cons: Consortium, inst: Institution, uscc: str, purposes: Sequence[str], *, days: int = 365
) -> dict[str, Any]:
    """File an authorization for ``inst`` at its home node: the enterprise's consent signed
    by its city's registry, the request signed by the institution's key."""
    now = datetime.now(UTC).replace(microsecond=0)
    not_before = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    not_after = (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if (
        cons.target == "docker"
    ):  # containers start knowing no institution; registration is idempotent
        register_institutions(cons, [inst.home_node])
    authorization_id = f"auth-{inst.institution_id}-{uscc}-{uuid.uuid4().hex[:6]}"
    text = consent_document(uscc, inst, purposes, not_before, not_after, authorization_id)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    consent_path = cons.dir / "consents" / f"{authorization_id}.txt"
    write_text_atomic(consent_path, text, private=True)
    body, signer = authorization_request(
        cons, authorization_id, uscc, inst.institution_id, purposes, not_before, not_after, digest
    )
    with NodeClient(cons, f"inst:{inst.institution_id}", inst.key()) as client:
        status, data = client.call(inst.home_node, "POST", "/v1/authorizations", body)
    if status != 201:
        raise NetworkError(
            f"filing the authorization failed: {problem_sentence(inst.home_node, status, data)}"
        )
    return {
        "authorization_id": authorization_id,
        "document": str(consent_path),
        "document_digest": digest,
        "not_before": not_before,
        "not_after": not_after,
        "index": data.get("index"),
        "node_id": inst.home_node,
        "consent_signed_by": signer,
    }


def check_uscc(cons: Consortium, uscc: str) -> None:
    """One sentence if ``uscc`` is invalid or registered where no node of this consortium serves."""
    try:
        parsed = parse_uscc(uscc)
    except InvalidUsccError as exc:
        raise NetworkError(str(exc)) from exc
    if not cons.manifest.nodes_for_admin_code(parsed.admin_code):
        raise NetworkError(
            f"USCC {uscc} is registered in administrative area {parsed.admin_code}, "
            "which no node of this consortium serves"
        )


def query_report(
    cons: Consortium,
    institution_id: str,
    uscc: str,
    purpose: str,
    *,
    authorization_id: str | None = None,
    out: Path | None = None,
    timeout_s: float = 60.0,
    on_filed: Callable[[dict[str, Any]], None] | None = None,
) -> QueryResult:
    """Ask the institution's home node for a report, verify it offline, save the bundle."""
    inst = cons.institution(institution_id)
    check_uscc(cons, uscc)
    if purpose not in PURPOSES:
        raise NetworkError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    if purpose not in inst.purposes:
        raise NetworkError(
            f"institution {institution_id} is registered for {', '.join(inst.purposes)}, not {purpose}"
        )
    filed = None
    if authorization_id is None:
        filed = file_authorization(cons, inst, uscc, [purpose])
        authorization_id = filed["authorization_id"]
        if on_filed is not None:
            on_filed(filed)
    t0 = time.perf_counter()
    with NodeClient(cons, f"inst:{inst.institution_id}", inst.key(), timeout_s=timeout_s) as client:
        status, bundle = client.call(
            inst.home_node,
            "POST",
            "/v1/reports",
            {"uscc": uscc, "purpose": purpose, "authorization_id": authorization_id},
        )
    seconds = time.perf_counter() - t0
    if status != 200:
        raise NetworkError(problem_sentence(inst.home_node, status, bundle))
    manifest = trusted_manifest(cons)
    try:
        summary = verify_bundle(bundle, manifest)
    except BundleError as exc:
        raise NetworkError(f"the report from {inst.home_node} does not verify: {exc}") from exc
    path = out or cons.dir / "reports" / f"{summary.query_id}.json"
    write_json(Path(path), bundle, private=True)
    return QueryResult(bundle, summary, Path(path), filed, seconds)


def trusted_manifest(cons: Consortium) -> Manifest:
    """The manifest of ``cons``, checked against its root key; NetworkError if it fails."""
    try:
        return load_manifest(cons.manifest_path, root_key=cons.root_public_key())
    except ConfigError as exc:
        raise NetworkError(str(exc)) from exc


def load_bundle_file(
    bundle_path: Path,
    manifest_path: Path | None,
    root_key: str | None = None,
    history_path: Path | None = None,
) -> tuple[dict[str, Any], Manifest]:
    """A saved bundle and the manifest to check it with; NetworkError names what is wrong.

    With ``history_path`` (one signed manifest per line) the manifest is the version the
    bundle's report names; otherwise ``manifest_path``.
    """
    history: ManifestHistory | None = None
    manifest: Manifest | None = None
    try:
        if history_path is not None:
            history = parse_history(
                Path(history_path).read_bytes(), root_key=root_key, source=str(history_path)
            )
        elif manifest_path is not None:
            manifest = load_manifest(Path(manifest_path), root_key=root_key)
        else:
            raise ConfigError("give a manifest or a manifest history")
    except FileNotFoundError:
        raise NetworkError(f"the manifest history {history_path} does not exist") from None
    except OSError as exc:
        raise NetworkError(f"the manifest history cannot be read: {exc.strerror}") from exc
    except ConfigError as exc:
        raise NetworkError(f"the manifest cannot be used: {exc}") from exc
    try:
        bundle = parse_json(Path(bundle_path).read_text("utf-8"), str(bundle_path))
    except FileNotFoundError:
        raise NetworkError(f"{bundle_path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetworkError(f"{bundle_path} cannot be read: {exc}") from exc
    except JsonDepthError as exc:
        raise NetworkError(str(exc)) from exc
    except ValueError as exc:
        raise NetworkError(f"{bundle_path} is not JSON ({exc})") from exc
    if not isinstance(bundle, dict):
        raise NetworkError(f"{bundle_path} is not a report bundle (expected a JSON object)")
    if history is not None:
        try:
            manifest = history.at(bundle_manifest_version(bundle))
        except (BundleError, ConfigError) as exc:
            raise NetworkError(f"the bundle does not verify: {exc}") from exc
    assert manifest is not None
    return bundle, manifest


def verify_bundle_file(
    bundle_path: Path,
    manifest_path: Path | None,
    root_key: str | None = None,
    history_path: Path | None = None,
) -> BundleSummary:
    """Offline verification of a saved bundle; NetworkError names the problem in one sentence."""
    loaded = load_bundle_file(bundle_path, manifest_path, root_key, history_path)
    return verify_bundle_steps(*loaded)[1]


def verify_bundle_steps(
    bundle: dict[str, Any], manifest: Manifest
) -> tuple[list[VerificationStep], BundleSummary]:
    """Every check of :func:`node.bundle.verification_steps` and the summary.

    Raises:
        NetworkError: the bundle does not verify (the sentence names the failed step).
    """
    steps, summary = verification_steps(bundle, manifest)
    if summary is None:
        failed = steps[-1]
        raise NetworkError(
            f"the bundle does not verify: {failed.detail} ({failed.reason}); failed check: "
            f"{failed.name}, after {len(steps) - 1} passed"
        )
    return steps, summary


# --- finding enterprises to query ---------------------------------------------------------
NEGATIVE_TYPES = (
    "admin_penalty",
    "judicial_enforcement",
    "black_list",
    "dishonest_debtor",
    "tax_arrears",
)


@dataclass(frozen=True, slots=True)
class EnterpriseSample:
    uscc: str
    city: str
    index: int
    holders: tuple[str, ...]
    records: tuple[str, ...]  # "holder:record_type", "+resolved" when a correction supersedes it


def synthetic_data(cons: Consortium) -> SyntheticData:
    if cons.target == "docker":  # the containers seed themselves with the plan in consortium.json
        seeding = read_json(cons.dir / "consortium.json", "consortium file").get("seeding")
    else:
        seeding = read_state(cons.dir).get("seeding")
    if not seeding:
        raise NetworkError(
            f"the network in {cons.dir} has not been seeded yet; run `creditchain up` first"
        )
    return SyntheticData(cons.topology, int(seeding["enterprises"]), int(seeding["seed"]))


def _holdings(
    ledgers: dict[str, Ledger | None], cons: Consortium, uscc: str, holders: Sequence[str]
) -> tuple[str, ...]:
    """What each holder's ledger says about ``uscc`` (metadata only: types and corrections)."""
    from ledger import CorrectionEntry, RecordEntry

    out = []
    for node_id in holders:
        if node_id not in ledgers:
            path = cons.ledger_path(node_id)
            try:
                ledgers[node_id] = Ledger.open(path, readonly=True) if path.exists() else None
            except LedgerError:
                ledgers[node_id] = None
        ledger = ledgers[node_id]
        if ledger is None:
            continue
        rows = [e for _, e in ledger.by_subject(uscc, ("record", "correction"))]
        corrected = {e.supersedes: e.outcome for e in rows if isinstance(e, CorrectionEntry)}
        for e in rows:
            if isinstance(e, RecordEntry):
                mark = f" ({corrected[e.record_id]})" if e.record_id in corrected else ""
                out.append(f"{node_id}:{e.record_type}{mark}")
    return tuple(out)


def sample_enterprises(
    cons: Consortium,
    city: str | None = None,
    *,
    limit: int = 5,
    min_cities: int = 2,
    negative: bool = False,
) -> list[EnterpriseSample]:
    """Enterprises of the seeded synthetic data held in at least ``min_cities`` cities.

    Cities are visited round-robin. With ``negative``, only enterprises with a
    penalty, an enforcement or a black-list entry (the post-loan story of
    DESIGN.md §1). Record types come from the ledgers themselves (read-only).
    """
    data = synthetic_data(cons)
    if negative and cons.target == "docker":
        raise NetworkError(
            "choosing enterprises with negative records reads the ledger files, which live in the "
            "containers' volumes; leave out --negative for a container network"
        )
    codes = [c.code for c in cons.topology.cities]
    if city is not None and city not in codes:
        raise NetworkError(f"unknown city {city!r}; cities are {', '.join(codes)}")

    def candidates(code: str) -> Iterator[tuple[int, tuple[str, ...]]]:
        for i in range(data.counts[code]):
            holders = tuple(data.holders(code, i))
            if len({h.rsplit("-", 1)[0] for h in holders}) >= min_cities:
                yield i, holders

    streams = {code: candidates(code) for code in ([city] if city else codes)}
    ledgers: dict[str, Ledger | None] = {}
    found: list[EnterpriseSample] = []
    try:
        while streams and len(found) < limit:
            for code in list(streams):
                for i, holders in streams[code]:
                    uscc = data.enterprise(code, i).uscc
                    records = _holdings(ledgers, cons, uscc, holders)
                    if negative and not any(
                        r.split(":")[1].split(" ")[0] in NEGATIVE_TYPES for r in records
                    ):
                        continue
                    found.append(EnterpriseSample(uscc, code, i, holders, records))
                    break
                else:
                    del streams[code]
                if len(found) >= limit:
                    break
    finally:
        for ledger in ledgers.values():
            if ledger is not None:
                ledger.close()
    return found
