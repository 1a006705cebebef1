"""Reliability harnesses: crash rounds and the soak."""

from __future__ import annotations

from scenarios.reliability.harness import (
    INCLUSION_SAMPLE as INCLUSION_SAMPLE,
)
from scenarios.reliability.harness import (
    PAGE_CACHE_FACTOR as PAGE_CACHE_FACTOR,
)
from scenarios.reliability.harness import (
    PAGE_CACHE_MIB as PAGE_CACHE_MIB,
)
from scenarios.reliability.harness import (
    Ack as Ack,
)
from scenarios.reliability.harness import (
    CrashConfig as CrashConfig,
)
from scenarios.reliability.harness import (
    ReliabilityError as ReliabilityError,
)
from scenarios.reliability.harness import (
    SoakConfig as SoakConfig,
)
from scenarios.reliability.harness import (
    body_digest as body_digest,
)
from scenarios.reliability.harness import (
    check_acks as check_acks,
)
from scenarios.reliability.harness import (
    check_mirrors as check_mirrors,
)
from scenarios.reliability.harness import (
    check_served as check_served,
)
from scenarios.reliability.harness import (
    data_files_mib as data_files_mib,
)
from scenarios.reliability.harness import (
    fit_slope as fit_slope,
)
from scenarios.reliability.harness import (
    local_network as local_network,
)
from scenarios.reliability.harness import (
    memory_figures as memory_figures,
)
from scenarios.reliability.harness import (
    remove_workdir as remove_workdir,
)
from scenarios.reliability.harness import (
    run_crash as run_crash,
)
from scenarios.reliability.harness import (
    run_soak as run_soak,
)
from scenarios.reliability.harness import (
    verify_file as verify_file,
)
from scenarios.reliability.harness import (
    write_results as write_results,
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
