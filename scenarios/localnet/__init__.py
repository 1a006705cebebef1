"""The local network: one process per node on 127.0.0.1, from a consortium directory.

Modules, bottom up (each imports only those above it)::

    consortium  the directory: keys, signed manifest, institutions, node settings, run state
    seeding     each ledger filled with its synthetic enterprises before the nodes start
    processes   node processes spawned detached; waits until healthy and until mirrored
    client      the signed client an operator or institution uses against one node
    queries     authorizations, reports, offline bundle verification, enterprise samples
    network     up, status, kill and down of the whole network
    objections  objections filed as the enterprise, outcomes, the network clock's offset
"""

from __future__ import annotations

from scenarios.errors import MirrorStalledError, NetworkError
from scenarios.localnet.client import (
    NodeClient,
    operator_client,
    problem_sentence,
    register_institutions,
)
from scenarios.localnet.consortium import (
    DEFAULT_BASE_PORT,
    DEFAULT_DIR,
    MIRROR_INTERVAL_S,
    SAME_CITY_LATENCY_MS,
    Consortium,
    Institution,
    PublishedPortTransport,
    consortium_exists,
    find_free_base_port,
    init_consortium,
    institution_plan,
    load_consortium,
    port_free,
    read_state,
    running_nodes,
    write_json,
    write_state,
    write_text_atomic,
)
from scenarios.localnet.network import (
    DEFAULT_ENTERPRISES,
    DEFAULT_SEED,
    NodeStatus,
    UpResult,
    down,
    kill_node,
    network_status,
    up,
)
from scenarios.localnet.objections import (
    advance_clock,
    decide_objection,
    enterprise_home,
    file_objection,
    objection_request,
    show_objection,
)
from scenarios.localnet.processes import mirror_lag, node_infos, spawn, wait_healthy, wait_mirrored
from scenarios.localnet.queries import (
    NEGATIVE_TYPES,
    EnterpriseSample,
    QueryResult,
    authorization_request,
    check_uscc,
    consent_document,
    file_authorization,
    load_bundle_file,
    query_report,
    sample_enterprises,
    synthetic_data,
    verify_bundle_file,
    verify_bundle_steps,
)
from scenarios.localnet.seeding import (
    COMPACT_CATALOGUE_FROM,
    RECORDS_PER_ENTERPRISE,
    SEED_BATCH,
    SEED_WORKERS,
    SeedResult,
    catalogue_mode,
    needs_seed,
    seed_ledger_file,
    seed_ledgers,
    set_catalogue_mode,
)

__all__ = [
    "COMPACT_CATALOGUE_FROM",
    "DEFAULT_BASE_PORT",
    "DEFAULT_DIR",
    "DEFAULT_ENTERPRISES",
    "DEFAULT_SEED",
    "MIRROR_INTERVAL_S",
    "NEGATIVE_TYPES",
    "RECORDS_PER_ENTERPRISE",
    "SAME_CITY_LATENCY_MS",
    "SEED_BATCH",
    "SEED_WORKERS",
    "Consortium",
    "EnterpriseSample",
    "Institution",
    "MirrorStalledError",
    "NetworkError",
    "NodeClient",
    "NodeStatus",
    "PublishedPortTransport",
    "QueryResult",
    "SeedResult",
    "UpResult",
    "advance_clock",
    "authorization_request",
    "catalogue_mode",
    "check_uscc",
    "consent_document",
    "consortium_exists",
    "decide_objection",
    "down",
    "enterprise_home",
    "file_authorization",
    "file_objection",
    "find_free_base_port",
    "init_consortium",
    "institution_plan",
    "kill_node",
    "load_bundle_file",
    "load_consortium",
    "mirror_lag",
    "needs_seed",
    "network_status",
    "node_infos",
    "objection_request",
    "operator_client",
    "port_free",
    "problem_sentence",
    "query_report",
    "read_state",
    "register_institutions",
    "running_nodes",
    "sample_enterprises",
    "seed_ledger_file",
    "seed_ledgers",
    "set_catalogue_mode",
    "show_objection",
    "spawn",
    "synthetic_data",
    "up",
    "verify_bundle_file",
    "verify_bundle_steps",
    "wait_healthy",
    "wait_mirrored",
    "write_json",
    "write_state",
    "write_text_atomic",
]
