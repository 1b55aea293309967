from __future__ import annotations

from typing import Any

import pytest

from patronage.core.net import client_ip


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ([], "203.0.113.7", "198.51.100.1", "203.0.113.7"),  # no proxy configured: the header is ignored
        (["10.0.0.0/8"], "203.0.113.7", "198.51.100.1", "203.0.113.7"),  # peer is not a trusted proxy
        (["10.0.0.0/8"], "10.0.0.5", "198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),  # spoofed left entry
        (["10.0.0.0/8"], "10.0.0.5", "", "10.0.0.5"),
        (["10.0.0.0/8"], "10.0.0.5", "garbage", "10.0.0.5"),
        (["::1"], "::1", "[2001:db8::7]:4711", "2001:db8::7"),
        (["127.0.0.1"], "127.0.0.1", "192.0.2.4:51234", "192.0.2.4"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(
    settings: Any, trusted: list[str], peer: str, forwarded: str, expected: str
) -> None:
    settings.PATRONAGE_TRUSTED_PROXIES = trusted
    assert client_ip({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}) == expected


def test_no_peer_address_gives_none() -> None:
    assert client_ip({}) is None
