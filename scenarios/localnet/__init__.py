"""The local network: consortium directory, seeding, node processes, waits and the institution client."""

from __future__ import annotations

from scenarios.localnet.network import (
    COMPACT_CATALOGUE_FROM as COMPACT_CATALOGUE_FROM,
)
from scenarios.localnet.network import (
    DEFAULT_BASE_PORT as DEFAULT_BASE_PORT,
)
from scenarios.localnet.network import (
    DEFAULT_DIR as DEFAULT_DIR,
)
from scenarios.localnet.network import (
    DEFAULT_ENTERPRISES as DEFAULT_ENTERPRISES,
)
from scenarios.localnet.network import (
    DEFAULT_SEED as DEFAULT_SEED,
)
from scenarios.localnet.network import (
    MIRROR_INTERVAL_S as MIRROR_INTERVAL_S,
)
from scenarios.localnet.network import (
    NEGATIVE_TYPES as NEGATIVE_TYPES,
)
from scenarios.localnet.network import (
    RECORDS_PER_ENTERPRISE as RECORDS_PER_ENTERPRISE,
)
from scenarios.localnet.network import (
    SAME_CITY_LATENCY_MS as SAME_CITY_LATENCY_MS,
)
from scenarios.localnet.network import (
    SEED_BATCH as SEED_BATCH,
)
from scenarios.localnet.network import (
    SEED_WORKERS as SEED_WORKERS,
)
from scenarios.localnet.network import (
    Consortium as Consortium,
)
from scenarios.localnet.network import (
    EnterpriseSample as EnterpriseSample,
)
from scenarios.localnet.network import (
    Institution as Institution,
)
from scenarios.localnet.network import (
    MirrorStalledError as MirrorStalledError,
)
from scenarios.localnet.network import (
    NetworkError as NetworkError,
)
from scenarios.localnet.network import (
    NodeClient as NodeClient,
)
from scenarios.localnet.network import (
    NodeStatus as NodeStatus,
)
from scenarios.localnet.network import (
    PublishedPortTransport as PublishedPortTransport,
)
from scenarios.localnet.network import (
    QueryResult as QueryResult,
)
from scenarios.localnet.network import (
    SeedResult as SeedResult,
)
from scenarios.localnet.network import (
    UpResult as UpResult,
)
from scenarios.localnet.network import (
    catalogue_mode as catalogue_mode,
)
from scenarios.localnet.network import (
    check_uscc as check_uscc,
)
from scenarios.localnet.network import (
    consent_document as consent_document,
)
from scenarios.localnet.network import (
    consortium_exists as consortium_exists,
)
from scenarios.localnet.network import (
    down as down,
)
from scenarios.localnet.network import (
    file_authorization as file_authorization,
)
from scenarios.localnet.network import (
    find_free_base_port as find_free_base_port,
)
from scenarios.localnet.network import (
    init_consortium as init_consortium,
)
from scenarios.localnet.network import (
    institution_plan as institution_plan,
)
from scenarios.localnet.network import (
    kill_node as kill_node,
)
from scenarios.localnet.network import (
    load_consortium as load_consortium,
)
from scenarios.localnet.network import (
    mirror_lag as mirror_lag,
)
from scenarios.localnet.network import (
    needs_seed as needs_seed,
)
from scenarios.localnet.network import (
    network_status as network_status,
)
from scenarios.localnet.network import (
    node_infos as node_infos,
)
from scenarios.localnet.network import (
    operator_client as operator_client,
)
from scenarios.localnet.network import (
    port_free as port_free,
)
from scenarios.localnet.network import (
    problem_sentence as problem_sentence,
)
from scenarios.localnet.network import (
    query_report as query_report,
)
from scenarios.localnet.network import (
    read_state as read_state,
)
from scenarios.localnet.network import (
    register_institutions as register_institutions,
)
from scenarios.localnet.network import (
    running_nodes as running_nodes,
)
from scenarios.localnet.network import (
    sample_enterprises as sample_enterprises,
)
from scenarios.localnet.network import (
    seed_ledger_file as seed_ledger_file,
)
from scenarios.localnet.network import (
    seed_ledgers as seed_ledgers,
)
from scenarios.localnet.network import (
    set_catalogue_mode as set_catalogue_mode,
)
from scenarios.localnet.network import (
    spawn as spawn,
)
from scenarios.localnet.network import (
    synthetic_data as synthetic_data,
)
from scenarios.localnet.network import (
    up as up,
)
from scenarios.localnet.network import (
    verify_bundle_file as verify_bundle_file,
)
from scenarios.localnet.network import (
    wait_healthy as wait_healthy,
)
from scenarios.localnet.network import (
    wait_mirrored as wait_mirrored,
)
from scenarios.localnet.network import (
    write_state as write_state,
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
    "catalogue_mode",
    "check_uscc",
    "consent_document",
    "consortium_exists",
    "down",
    "file_authorization",
    "find_free_base_port",
    "init_consortium",
    "institution_plan",
    "kill_node",
    "load_consortium",
    "mirror_lag",
    "needs_seed",
    "network_status",
    "node_infos",
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
    "spawn",
    "synthetic_data",
    "up",
    "verify_bundle_file",
    "wait_healthy",
    "wait_mirrored",
    "write_state",
]
