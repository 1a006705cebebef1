"""The request bodies the node accepts: pydantic wire models, never hashed or signed.

Unknown fields are refused. The peer bodies read by hand are documented here as JSON Schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledger import (
    PURPOSES,
)

# --- wire models (never hashed or signed) ---------------------------------------
#: Sizes and indexes are SQLite integers: anything larger is refused as input (422).
MAX_INDEX = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstitutionIn(_Strict):
    institution_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(
        min_length=40, max_length=64, description="base64 raw Ed25519 public key"
    )
    purposes: list[str] = Field(min_length=1, max_length=len(PURPOSES))


class AuthorizationIn(_Strict):
    authorization_id: str = Field(min_length=1, max_length=128)
    uscc: str = Field(min_length=1, max_length=64)
    institution_id: str = Field(min_length=1, max_length=128)
    purposes: list[str] = Field(min_length=1, max_length=len(PURPOSES))
    not_before: str
    not_after: str
    document_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    # The enterprise's consent: base64 Ed25519 signature by its city's registry over
    # ledger.consent_message of the other fields (node.consent). Without it: 403.
    consent: str = Field(default="", max_length=128)


class RevocationIn(_Strict):
    reason: str = Field(min_length=1, max_length=512)


class ReportIn(_Strict):
    uscc: str = Field(min_length=1, max_length=64)
    purpose: str = Field(min_length=1, max_length=64)
    authorization_id: str = Field(min_length=1, max_length=128)


class RecordIn(_Strict):
    uscc: str = Field(min_length=1, max_length=64)
    record_type: str | None = None
    record_id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=128)
    observed_at: str
    body: dict[str, Any]
    supersedes: str | None = None
    outcome: str | None = None


class IngestIn(_Strict):
    records: list[RecordIn] | None = Field(default=None, max_length=5000)
    source: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[^\x00]*$",
        description="a JSON Lines file under the node's sources/ directory",
    )


class CosignatureIn(_Strict):
    size: int = Field(ge=0, le=MAX_INDEX)
    line: str = Field(min_length=1, max_length=400)


# --- OpenAPI: what the wire actually carries ---------------------------------------------
_B64 = {"type": "string", "maxLength": 8192}
PEER_RECORDS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["query_id", "uscc", "purpose", "institution_id", "authorization"],
    "properties": {
        "query_id": {"type": "string"},
        "uscc": {"type": "string"},
        "purpose": {"type": "string"},
        "institution_id": {"type": "string"},
        "known_size": {"type": "integer", "minimum": 0},
        "authorization": {
            "type": "object",
            "required": ["entry", "index", "checkpoint", "proof"],
            "properties": {
                "entry": _B64,
                "index": {"type": "integer", "minimum": 0},
                "checkpoint": {"type": "string"},
                "proof": {"type": "array", "items": _B64},
            },
        },
        "home_consistency": {
            "type": "object",
            "required": ["from", "proof"],
            "properties": {
                "from": {"type": "integer", "minimum": 0},
                "proof": {"type": "array", "items": _B64},
            },
        },
    },
}
PEER_RECEIPTS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["query_id", "receipt"],
    "properties": {
        **{
            k: {"type": "string"}
            for k in ("query_id", "uscc", "institution_id", "purpose", "authorization_id", "reason")
        },
        "receipt": {
            "type": "object",
            "description": "the home node's denied receipt: entry, index, checkpoint, proof",
            "required": ["entry", "index", "checkpoint", "proof"],
            "properties": {
                "entry": {"type": "string"},
                "index": {"type": "integer", "minimum": 0},
                "checkpoint": {"type": "string"},
                "proof": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "node_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "node_id": {"type": "string"},
    },
}


def json_body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``openapi_extra`` that documents a JSON request body read by hand."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
