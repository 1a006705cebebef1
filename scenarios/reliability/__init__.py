"""Reliability harnesses: crash rounds and the bounded soak, each on a network of its own.

Modules::

    checks  what a client was promised is on the ledger, whole; served and mirrored trees agree
    common  the harnesses' own local network, cross-city targets, results files
    crash   SIGKILL-and-restart rounds under ingest and report load (``run_crash``)
    soak    open-loop reports at a fraction of capacity, memory slope, receipts (``run_soak``)
"""

from __future__ import annotations

from scenarios.errors import ReliabilityError
from scenarios.reliability.checks import (
    INCLUSION_SAMPLE,
    Ack,
    body_digest,
    check_acks,
    check_mirrors,
    check_served,
    verify_file,
)
from scenarios.reliability.common import local_network, remove_workdir, write_results
from scenarios.reliability.crash import CrashConfig, run_crash
from scenarios.reliability.soak import (
    PAGE_CACHE_FACTOR,
    PAGE_CACHE_MIB,
    SoakConfig,
    data_files_mib,
    fit_slope,
    memory_figures,
    run_soak,
)

__all__ = [
    "INCLUSION_SAMPLE",
    "PAGE_CACHE_FACTOR",
    "PAGE_CACHE_MIB",
    "Ack",
    "CrashConfig",
    "ReliabilityError",
    "SoakConfig",
    "body_digest",
    "check_acks",
    "check_mirrors",
    "check_served",
    "data_files_mib",
    "fit_slope",
    "local_network",
    "memory_figures",
    "remove_workdir",
    "run_crash",
    "run_soak",
    "verify_file",
    "write_results",
]
