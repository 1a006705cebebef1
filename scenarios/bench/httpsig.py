"""``creditchain bench httpsig``: what an RFC 9421 signature costs beside raw Ed25519.

One process measures, on the same request and response, interleaved round by
round so that load on the machine falls on every figure alike:

* raw Ed25519 sign and verify (``cryptography``) over the message's signature
  base, the floor any RFC 9421 implementation stands on;
* the library path: :mod:`node.http.httpsig` with ``fast_path=False``, every
  message through ``http-message-signatures`` (Structured Field parsing and
  serialization, component resolution);
* the fast path: the same calls with ``fast_path=True`` (:mod:`node.http.fastsig`).

Each of request sign, request verify, response sign and response verify is a
row: microseconds per call (median over rounds) for raw, library and fast, and
the ratios fast/raw and library/raw. The issue's target is fast/raw <= 2.

Invariants:
    * The fast and library paths are checked to write identical fields for the
      bench's messages and to accept each other's, before anything is timed;
      a failed check fails the run (:class:`BenchError`).
    * Request verification uses one fresh request per call (the verifier
      refuses a nonce twice, as a node does); they are signed before timing.
    * Headers are handed to the verifier as a plain dict, as the node does.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.http import fastsig, httpsig
from scenarios.errors import BenchError

__all__ = [
    "RESULT_FILE",
    "BenchError",
    "cli_run",
    "format_table",
    "run_httpsig_bench",
]

RESULT_FILE = "bench-httpsig.json"
TARGET_RATIO = 2.0
CREATED = 1_700_000_000
REQUEST_URL = "http://hz-1.creditchain.example:8101/v1/peer/report?subject=91330100MA2CFL2K3X&purpose=post-loan"
INST_ID = "inst:hzbank"
NODE_ID = "node:hz-1"
OPERATIONS = ("request_sign", "request_verify", "response_sign", "response_verify")


def _request_body(size: int) -> bytes:
    head = b'{"subject": "91330100MA2CFL2K3X", "purpose": "post-loan", "pad": "'
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


def _timed(call: Callable[[], object], ops: int) -> float:
    """Microseconds per call over ``ops`` calls."""
    start = time.perf_counter_ns()
    for _ in range(ops):
        call()
    return (time.perf_counter_ns() - start) / ops / 1000


class _Fixture:
    """The bench's keys, messages and the callables it times."""

    def __init__(self, request_bytes: int, response_bytes: int, ops: int, rounds: int) -> None:
        self.inst_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        self.node_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
        self.keys = {INST_ID: self.inst_key.public_key(), NODE_ID: self.node_key.public_key()}
        self.request_body = _request_body(request_bytes)
        self.response_body = _request_body(response_bytes)
        self.clock = lambda: float(CREATED)
        self.signers = {
            fast: httpsig.RequestSigner(INST_ID, self.inst_key, clock=self.clock, fast_path=fast)
            for fast in (True, False)
        }
        self.request = self._signed_request(True)
        self.sig_input = self.request.headers["signature-input"]
        self.sig = self.request.headers["signature"]
        self.response_headers = self._sign_response(True)
        where = fastsig.target(REQUEST_URL)
        assert where is not None
        fields = fastsig.parse_request(self.sig_input, self.sig)
        assert fields is not None
        self.request_base = fastsig.request_base(
            "POST", where, self.request.headers["content-digest"], fields.params
        )
        response = fastsig.parse_response(
            self.response_headers["Signature-Input"], self.response_headers["Signature"]
        )
        member = fastsig.signature_member(self.sig)
        assert response is not None and member is not None
        self.response_base = fastsig.response_base(
            200, self.response_headers["Content-Digest"], "POST", where, member, response.params
        )
        self.request_raw_sig = self.inst_key.sign(self.request_base)
        self.response_raw_sig = self.node_key.sign(self.response_base)
        # One fresh signed request per timed verification, for each path.
        self.pending = {
            fast: [self._request_headers() for _ in range(ops * rounds)] for fast in (True, False)
        }
        self.verifiers = {
            fast: httpsig.RequestVerifier(
                self.keys,
                clock=self.clock,
                nonce_cache=httpsig.NonceCache(max_entries=2 * ops * rounds + 16),
                fast_path=fast,
            )
            for fast in (True, False)
        }

    def _signed_request(self, fast: bool) -> httpx.Request:
        request = httpx.Request(
            "POST",
            REQUEST_URL,
            content=self.request_body,
            headers={"content-type": "application/json"},
        )
        self.signers[fast].sign(request)
        return request

    def _request_headers(self) -> dict[str, str]:
        return dict(self._signed_request(True).headers.items())

    def _sign_response(self, fast: bool, sig_input: str = "", sig: str = "") -> dict[str, str]:
        return httpsig.sign_response(
            200,
            {"content-type": "application/json"},
            self.response_body,
            sig_input or self.sig_input,
            sig or self.sig,
            NODE_ID,
            self.node_key,
            request_method="POST",
            request_url=REQUEST_URL,
            clock=self.clock,
            fast_path=fast,
        )

    def _verify_response(self, fast: bool, headers: dict[str, str]) -> str:
        return httpsig.verify_response(
            200,
            headers,
            self.response_body,
            self.sig_input,
            self.sig,
            self.keys,
            request_method="POST",
            request_url=REQUEST_URL,
            clock=self.clock,
            fast_path=fast,
        )

    def checks(self) -> dict[str, bool]:
        """The two paths agree on the bench's messages (else the timings compare nothing)."""
        signed = {}
        for fast in (True, False):
            request = httpx.Request(
                "POST", REQUEST_URL, content=self.request_body, headers={"content-type": "x"}
            )
            signer = httpsig.RequestSigner(
                INST_ID, self.inst_key, clock=self.clock, fast_path=fast, nonces=lambda: "A" * 22
            )
            signer.sign(request)
            signed[fast] = request.headers.multi_items()
        cross = True
        for signer_fast in (True, False):
            for verifier_fast in (True, False):
                request = self._signed_request(signer_fast)
                verifier = httpsig.RequestVerifier(
                    self.keys, clock=self.clock, fast_path=verifier_fast
                )
                got = verifier.verify("POST", REQUEST_URL, request.headers, request.content)
                cross &= got.key_id == INST_ID
                response = self._sign_response(signer_fast)
                cross &= self._verify_response(verifier_fast, response) == NODE_ID
        return {
            "request_fields_identical": signed[True] == signed[False],
            "response_fields_identical": self._sign_response(True) == self._sign_response(False),
            "each_path_accepts_the_other": cross,
        }

    def _path_calls(
        self, fast: bool, request: httpx.Request, response: dict[str, str]
    ) -> list[tuple[str, Callable[[], object]]]:
        signer, verifier, pending = (
            self.signers[fast],
            self.verifiers[fast],
            iter(self.pending[fast]),
        )

        def request_sign() -> object:
            signer.sign(request)
            return None

        def request_verify() -> object:
            return verifier.verify("POST", REQUEST_URL, next(pending), self.request_body)

        def response_sign() -> object:
            return self._sign_response(fast)

        def response_verify() -> object:
            return self._verify_response(fast, response)

        return [
            ("request_sign", request_sign),
            ("request_verify", request_verify),
            ("response_sign", response_sign),
            ("response_verify", response_verify),
        ]

    def calls(self) -> dict[tuple[str, str], Callable[[], object]]:
        request, response = self.request, self.response_headers
        inst_public, node_public = self.keys[INST_ID], self.keys[NODE_ID]
        out: dict[tuple[str, str], Callable[[], object]] = {
            ("request_sign", "raw"): lambda: self.inst_key.sign(self.request_base),
            ("request_verify", "raw"): lambda: inst_public.verify(
                self.request_raw_sig, self.request_base
            ),
            ("response_sign", "raw"): lambda: self.node_key.sign(self.response_base),
            ("response_verify", "raw"): lambda: node_public.verify(
                self.response_raw_sig, self.response_base
            ),
        }
        for fast, path in ((False, "library"), (True, "fast")):
            out |= {(op, path): call for op, call in self._path_calls(fast, request, response)}
        return out


def run_httpsig_bench(
    *,
    ops: int = 300,
    rounds: int = 15,
    request_bytes: int = 300,
    response_bytes: int = 2048,
    command: str = "creditchain bench httpsig",
) -> dict[str, Any]:
    """Measure every row; return the result (also what goes into :data:`RESULT_FILE`).

    Raises:
        BenchError: the two paths disagree on the bench's messages.
    """
    if ops < 1 or rounds < 1:
        raise BenchError(f"ops and rounds must be >= 1, got {ops} and {rounds}")
    fixture = _Fixture(request_bytes, response_bytes, ops, rounds)
    checks = fixture.checks()
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise BenchError(f"the fast and library paths disagree: {', '.join(failed)}")
    calls = fixture.calls()
    for (op, _), call in calls.items():  # warm caches and code paths outside the timed rounds
        if op != "request_verify":  # each pending request verifies once
            call()
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            samples[key].append(_timed(call, ops))
    figures = []
    for op in OPERATIONS:
        raw, library, fast = (
            statistics.median(samples[(op, p)]) for p in ("raw", "library", "fast")
        )
        figures.append(
            {
                "key": op,
                "raw_us": round(raw, 2),
                "library_us": round(library, 2),
                "fast_us": round(fast, 2),
                "fast_over_raw": round(fast / raw, 3),
                "library_over_raw": round(library / raw, 3),
                "library_over_fast": round(library / fast, 3),
                "fast_us_range": [
                    round(min(samples[(op, "fast")]), 2),
                    round(max(samples[(op, "fast")]), 2),
                ],
                "meets_target": fast / raw <= TARGET_RATIO,
            }
        )
    return {
        "command": command,
        "ops_per_round": ops,
        "rounds": rounds,
        "request": {"method": "POST", "url": REQUEST_URL, "body_bytes": len(fixture.request_body)},
        "response": {"status": 200, "body_bytes": len(fixture.response_body)},
        "signature_base_bytes": {
            "request": len(fixture.request_base),
            "response": len(fixture.response_base),
        },
        "target_fast_over_raw": TARGET_RATIO,
        "checks": checks,
        "figures": figures,
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cryptography": metadata.version("cryptography"),
            "http-message-signatures": metadata.version("http-message-signatures"),
        },
    }


def format_table(result: dict[str, Any]) -> str:
    """The result as the table the command prints."""
    names = {
        "request_sign": "request sign",
        "request_verify": "request verify",
        "response_sign": "response sign",
        "response_verify": "response verify",
    }
    lines = [
        f"{'operation':<17}{'raw Ed25519':>13}{'library':>11}{'fast':>10}"
        f"{'library/raw':>13}{'fast/raw':>10}",
    ]
    for f in result["figures"]:
        lines.append(
            f"{names[f['key']]:<17}{f['raw_us']:>10.1f} us{f['library_us']:>8.1f} us"
            f"{f['fast_us']:>7.1f} us{f['library_over_raw']:>12.2f}x{f['fast_over_raw']:>9.2f}x"
        )
    met = sum(f["meets_target"] for f in result["figures"])
    lines.append(
        f"fast/raw <= {result['target_fast_over_raw']:g}: {met} of {len(result['figures'])} operations "
        f"(median of {result['rounds']} rounds x {result['ops_per_round']} calls; request body "
        f"{result['request']['body_bytes']} B, response body {result['response']['body_bytes']} B)"
    )
    return "\n".join(lines)


def cli_run(
    ops: int, rounds: int, response_bytes: int, out: Path, echo: Callable[[str], None]
) -> dict[str, Any]:
    """What ``creditchain bench httpsig`` does: measure, print the table, write the JSON."""
    import shlex

    result = run_httpsig_bench(
        ops=ops,
        rounds=rounds,
        response_bytes=response_bytes,
        command=shlex.join(["creditchain", *sys.argv[1:]])
        if sys.argv[1:]
        else "creditchain bench httpsig",
    )
    echo(format_table(result))
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULT_FILE
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    echo(f"wrote {path}")
    return result
