"""The connection cap against the descriptor limit, and the slow-client settings."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from node.errors import ConfigError
from node.http.server import DESCRIPTOR_RESERVE, connection_cap, guarded_protocol
from node.settings import NodeSettings

INF = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    "requested,soft,hard,expected",
    [
        (512, 20000, 20000, (512, 20000)),  # room enough: nothing changes
        (512, INF, INF, (512, INF)),
        (512, 1024, 4096, (512, 1024)),  # fits below the soft limit
        (512, 256, 4096, (512, 512 + DESCRIPTOR_RESERVE)),  # the soft limit is raised
        (512, 256, INF, (512, 512 + DESCRIPTOR_RESERVE)),
        (512, 256, 600, (600 - DESCRIPTOR_RESERVE, 600)),  # the hard limit caps the cap
        (512, 100, 100, (1, 100)),
    ],
)
def test_connection_cap(requested: int, soft: int, hard: int, expected: tuple[int, int]) -> None:
    assert connection_cap(requested, soft, hard) == expected


@pytest.mark.parametrize(
    "change,words",
    [
        ({"header_timeout_s": 0}, "header_timeout_s"),
        ({"header_timeout_s": float("nan")}, "header_timeout_s"),
        ({"header_timeout_s": float("inf")}, "header_timeout_s"),
        ({"max_connections": 0}, "max_connections"),
        ({"body_timeout_s": 0}, "body_timeout_s"),
        ({"body_timeout_s": float("inf")}, "body_timeout_s"),
    ],
)
def test_bad_slow_client_settings_are_named(change: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        NodeSettings("hz-1", Path("d"), Path("k"), Path("m"), **change)


def test_settings_read_the_limits_from_text() -> None:
    s = NodeSettings.from_mapping(
        {
            "node_id": "hz-1",
            "data_dir": "d",
            "key_file": "k",
            "manifest": "m",
            "header_timeout_s": "2.5",
            "max_connections": "64",
        }
    )
    assert (s.header_timeout_s, s.max_connections) == (2.5, 64)


def test_guarded_protocol_refuses_unusable_limits() -> None:
    with pytest.raises(ValueError, match="header_timeout_s"):
        guarded_protocol("hz-1", header_timeout_s=0, max_connections=1)
    with pytest.raises(ValueError, match="body_timeout_s"):
        guarded_protocol("hz-1", header_timeout_s=1, max_connections=1, body_timeout_s=0)
