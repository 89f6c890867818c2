"""Reading keys and client addresses as One API does, and a little more safely."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from libs.common.net import client_address
from services.relay.errors import RelayError
from services.relay.ingress import new_request_id, parse_api_key


def request(headers: dict[str, str], peer: str = "203.0.113.9") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {
            "type": "http",
            "headers": raw,
            "client": (peer, 5555),
            "method": "POST",
            "path": "/v1/chat/completions",
        }
    )


@pytest.mark.parametrize(
    ("header", "key", "channel"),
    [
        ("Bearer sk-abc", "abc", None),
        ("Bearer abc", "abc", None),
        ("bearer sk-abc-12", "abc", 12),
        ("sk-abc", "abc", None),
    ],
)
def test_key_forms(header: str, key: str, channel: int | None) -> None:
    parsed = parse_api_key(request({"Authorization": header}))
    assert (parsed.key, parsed.channel_id) == (key, channel)


def test_anthropic_and_azure_style_headers_are_accepted() -> None:
    assert parse_api_key(request({"x-api-key": "sk-abc"})).key == "abc"
    assert parse_api_key(request({"api-key": "abc"})).key == "abc"


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer sk-abc-notanumber"])
def test_missing_or_malformed_keys_are_401(header: str) -> None:
    with pytest.raises(RelayError) as caught:
        parse_api_key(request({"Authorization": header}))
    assert caught.value.status == 401


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.7, 10.0.0.2"}
    assert client_address(request(forwarded), []) == "203.0.113.9"
    behind_proxy = request(forwarded, peer="10.0.0.1")
    assert client_address(behind_proxy, ["10.0.0.0/8"]) == "198.51.100.7"
    assert client_address(request(forwarded, peer="203.0.113.9"), ["10.0.0.0/8"]) == "203.0.113.9"


def test_request_ids_are_unique_and_time_ordered() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(rid) == 26 for rid in ids)
