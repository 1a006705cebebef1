"""The arithmetic of an alternated bench: phase order, medians with their spread, CPU per request.

Chain and baseline run in short alternating closed-loop phases (A B A B ...), so a
drift of the machine (another tenant, a thermal step) touches both sides of every
pair instead of going straight into their ratio. The figures that come out are
medians over the pairs with their spread (min, max, quartiles).

CPU per request counts the processes that serve it (never the load generator) and
has the background CPU those processes burn when idle taken out: ``idle`` CPU-seconds
per second, measured in an idle phase, times the phase's seconds. What is left is
what the requests cost.

Everything here is a pure function of numbers: no I/O, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASELINE",
    "CHAIN",
    "PhaseCost",
    "alternating_phases",
    "cpu_ms_per_request",
    "median_spread",
    "pair_ratios",
    "stage_deltas",
    "stage_ms_per_report",
]

CHAIN = "chain"
BASELINE = "baseline"


def alternating_phases(rounds: int, first: str = CHAIN) -> list[tuple[str, int]]:
    """``rounds`` pairs of phases, the two sides alternating: ``[(chain, 0), (baseline, 0), ...]``.

    Raises:
        ValueError: ``rounds`` is below 1 or ``first`` names no side.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if first not in (CHAIN, BASELINE):
        raise ValueError(f"first must be {CHAIN!r} or {BASELINE!r}, got {first!r}")
    second = BASELINE if first == CHAIN else CHAIN
    return [(side, r) for r in range(rounds) for side in (first, second)]


def median_spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Median, min, max and quartiles (inclusive method) of the values that are not None.

    With no value every statistic is None; with one, all of them are that value.
    """
    xs = sorted(float(v) for v in values if v is not None)
    if not xs:
        return {"median": None, "min": None, "max": None, "q1": None, "q3": None, "n": 0}
    if len(xs) == 1:
        q1 = q3 = xs[0]
    else:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return {
        "median": statistics.median(xs),
        "min": xs[0],
        "max": xs[-1],
        "q1": q1,
        "q3": q3,
        "n": len(xs),
    }


def pair_ratios(
    chain: Mapping[int, float | None], baseline: Mapping[int, float | None]
) -> list[float | None]:
    """Per round, chain / baseline (None where either is missing or the baseline is 0)."""
    out: list[float | None] = []
    for r in sorted(set(chain) | set(baseline)):
        a, b = chain.get(r), baseline.get(r)
        out.append(a / b if a is not None and b else None)
    return out


@dataclass(frozen=True, slots=True)
class PhaseCost:
    """What one phase cost the processes serving it."""

    cpu_s: float  # CPU-seconds of the serving processes during the phase (user + system)
    seconds: float  # wall seconds of the phase
    requests: int  # requests answered successfully


def cpu_ms_per_request(phases: Sequence[PhaseCost], idle_cpu_per_s: float = 0.0) -> float | None:
    """Milliseconds of serving CPU per request over ``phases``, background taken out.

    ``(sum cpu_s - idle_cpu_per_s * sum seconds) / sum requests``, never below 0
    (the idle rate is itself measured, so it may overshoot a phase's total). None
    when no request was answered.
    """
    requests = sum(p.requests for p in phases)
    if requests <= 0:
        return None
    cpu = sum(p.cpu_s for p in phases) - idle_cpu_per_s * sum(p.seconds for p in phases)
    return 1000.0 * max(0.0, cpu) / requests


# --- per-stage timings from Prometheus histograms -----------------------------------------
StageKey = tuple[str, str]  # (stage, area)


def stage_deltas(
    before: Mapping[StageKey, tuple[float, float]], after: Mapping[StageKey, tuple[float, float]]
) -> dict[StageKey, tuple[float, float]]:
    """``(sum seconds, count)`` per (stage, area) observed between two scrapes.

    A key only in ``after`` counts from zero; a counter that went down (a node
    restarted) counts from zero as well.
    """
    out: dict[StageKey, tuple[float, float]] = {}
    for key, (s1, c1) in after.items():
        s0, c0 = before.get(key, (0.0, 0.0))
        if c1 < c0 or s1 < s0:
            s0, c0 = 0.0, 0.0
        if c1 - c0 > 0:
            out[key] = (s1 - s0, c1 - c0)
    return out


def stage_ms_per_report(
    deltas: Mapping[StageKey, tuple[float, float]], reports: int, seconds: float
) -> dict[str, dict[str, Any]]:
    """Per ``stage/area``: mean ms per report, calls per report, mean ms per call, and
    seconds per second of the phase (what background work is read as)."""
    out: dict[str, dict[str, Any]] = {}
    for (stage, area), (total_s, count) in sorted(deltas.items()):
        out[f"{stage}/{area}"] = {
            "stage": stage,
            "area": area,
            "ms_per_report": 1000.0 * total_s / reports if reports else None,
            "calls_per_report": count / reports if reports else None,
            "ms_per_call": 1000.0 * total_s / count if count else None,
            "s_per_s": total_s / seconds if seconds > 0 else None,
        }
    return out
