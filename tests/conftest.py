"""Shared fixtures: fixed Ed25519 seeds, ledgers in temporary files, and
small deterministic batches of every entry kind.

Everything here is deterministic except the salts a ledger draws for record
bodies (``os.urandom``), which no test depends on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import (
    AlarmEntry,
    AuthorizationEntry,
    CorrectionDraft,
    CorrectionEntry,
    Entry,
    InstitutionEntry,
    Ledger,
    NoteSigner,
    ReceiptEntry,
    RecordDraft,
    RecordEntry,
    RevocationEntry,
    make_uscc,
)

# Fixed seeds: never change them, vectors and tests depend on the key IDs.
NODE_SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
INSTITUTION_SEED = bytes(range(64, 96))

NODE_NAME = "hz-1.yrd.example"
OTHER_NAME = "nj-1.yrd.example"
ORIGIN = "yrd.example/hz-1"

#: Enterprises in the synthetic region: node hz-1 then holds about 2,800 drafts,
#: enough for 1 + 7 + 255 + 256 + 257 + 1000 appends.
ENTERPRISES = 10_000

USCC_A = make_uscc("330100", 12345).code  # a Hangzhou enterprise
USCC_B = make_uscc("320500", 6789).code  # a Suzhou enterprise
T0 = "2021-10-31T08:00:00Z"
DIGEST = "ab" * 32


def make_signer(seed: bytes, name: str = NODE_NAME) -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


@pytest.fixture(scope="session")
def signer() -> NoteSigner:
    """The node's note signer (fixed seed)."""
    return make_signer(NODE_SEED)


@pytest.fixture(scope="session")
def other_signer() -> NoteSigner:
    """A different node's signer: a wrong key for ``tmp_ledger``."""
    return make_signer(OTHER_SEED, OTHER_NAME)


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "l.db"


@pytest.fixture
def make_ledger(tmp_path: Path, signer: NoteSigner) -> Iterator[Callable[..., Ledger]]:
    """Factory: ``make_ledger(name="l.db", algorithm="sha256")`` creates a ledger
    in ``tmp_path`` signed by ``signer``; every ledger made is closed afterwards."""
    made: list[Ledger] = []

    def make(name: str = "l.db", *, algorithm: str = "sha256", origin: str = ORIGIN) -> Ledger:
        ledger = Ledger.create(tmp_path / name, origin=origin, signer=signer, algorithm=algorithm)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


@pytest.fixture
def tmp_ledger(make_ledger: Callable[..., Ledger], ledger_path: Path) -> Ledger:
    """A fresh SHA-256 ledger at ``ledger_path`` (only the genesis block)."""
    return make_ledger(ledger_path.name)


@pytest.fixture(scope="session")
def drafts() -> list[RecordDraft | CorrectionDraft]:
    """Deterministic record and correction drafts held by node hz-1.

    They come from the simulator's workload model (``tests/support/synthetic.py``), imported
    only by the tests that ask for them: the rest of the ledger's tests need no ``scenarios``.
    """
    from support.synthetic import node_drafts

    return node_drafts("hz-1", ENTERPRISES)


def sample_entries() -> list[Entry]:
    """One valid entry of every kind, in a fixed order (the grant comes before the revocation)."""
    inst_key = "Aa" * 21 + "A="  # 44 characters of base64, as a 32-byte key encodes
    return [
        RecordEntry(USCC_A, "tax_rating", "hz-1:tax:1", "hz-tax", T0, DIGEST),
        CorrectionEntry(USCC_A, "hz-1:tax:1:c1", "hz-1:tax:1", "amended", "hz-tax", T0, "cd" * 32),
        InstitutionEntry("bank-001", "杭州银行", inst_key, ("pre_loan", "post_loan"), T0),
        AuthorizationEntry(
            "auth-001", USCC_A, "bank-001", ("pre_loan",), T0, "2022-10-31T08:00:00Z", DIGEST
        ),
        ReceiptEntry(
            "q-001",
            USCC_B,
            "bank-001",
            "hz-1",
            "sz-1",
            "home",
            "pre_loan",
            "auth-001",
            "granted",
            "ok",
            3,
            T0,
        ),
        RevocationEntry("auth-001", USCC_A, "2021-11-01T00:00:00Z", "enterprise withdrew consent"),
        AlarmEntry("sz-1", "equivocation", "two roots for size 10", ("note-a", "note-b"), T0),
    ]


@pytest.fixture
def entries() -> list[Entry]:
    return sample_entries()
