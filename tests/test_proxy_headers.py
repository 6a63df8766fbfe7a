"""ProxyHeadersMiddleware: forwarding headers are believed only from trusted peers."""

from __future__ import annotations

from typing import Any

import pytest

from spdyasgi.asgi.proxy_headers import ProxyHeadersMiddleware, TrustedHosts


async def run(
    headers: list[tuple[bytes, bytes]],
    trusted: Any = "127.0.0.1",
    client: tuple[str, int] | None = ("127.0.0.1", 5000),
    scope_type: str = "http",
    scheme: str = "http",
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {"type": scope_type, "scheme": scheme, "client": client, "headers": headers}
    await ProxyHeadersMiddleware(app, trusted)(scope, None, None)  # type: ignore[arg-type]
    return seen


async def test_trusted_peer_rewrites_client_and_scheme() -> None:
    scope = await run([(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")])
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


async def test_untrusted_peer_is_ignored() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]
    scope = await run(headers, client=("198.51.100.1", 5000))
    assert scope["client"] == ("198.51.100.1", 5000)
    assert scope["scheme"] == "http"


async def test_chain_takes_rightmost_untrusted_hop() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1, 203.0.113.7, 10.0.0.2")]
    scope = await run(headers, trusted="127.0.0.1,10.0.0.0/8")
    assert scope["client"] == ("203.0.113.7", 0)


async def test_repeated_header_lines_join() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"2.2.2.2")]
    scope = await run(headers)
    assert scope["client"] == ("2.2.2.2", 0)


async def test_all_trusted_chain_uses_leftmost() -> None:
    scope = await run([(b"x-forwarded-for", b"10.0.0.1, 10.0.0.2")], trusted="*")
    assert scope["client"] == ("10.0.0.1", 0)


async def test_wildcard_trusts_everyone_including_unix_peers() -> None:
    scope = await run([(b"x-forwarded-for", b"203.0.113.7")], trusted="*", client=None)
    assert scope["client"] == ("203.0.113.7", 0)
    scope = await run([(b"x-forwarded-for", b"203.0.113.7")], client=None)
    assert scope["client"] is None


async def test_rfc7239_forwarded() -> None:
    headers = [(b"forwarded", b'for="[2001:db8::1]:4711";proto=https, for=10.0.0.2')]
    scope = await run(headers, trusted=["127.0.0.1", "10.0.0.0/8"])
    assert scope["client"] == ("2001:db8::1", 0)
    assert scope["scheme"] == "https"


async def test_x_forwarded_wins_over_forwarded() -> None:
    headers = [(b"forwarded", b"for=9.9.9.9"), (b"x-forwarded-for", b"8.8.8.8")]
    scope = await run(headers)
    assert scope["client"] == ("8.8.8.8", 0)


async def test_websocket_scheme_mapping_and_bogus_proto() -> None:
    scope = await run([(b"x-forwarded-proto", b"https")], scope_type="websocket", scheme="ws")
    assert scope["scheme"] == "wss"
    scope = await run([(b"x-forwarded-proto", b"gopher")])
    assert scope["scheme"] == "http"


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await ProxyHeadersMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("trusted", "host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("::1", "::1", True),
        ("2001:db8::/32", "2001:db8::5", True),
        ("*", "anything", True),
        ("unix:", "unix:", True),
        ("127.0.0.1", "not-an-ip", False),
    ],
)
def test_trusted_hosts(trusted: str, host: str, expected: bool) -> None:
    assert (host in TrustedHosts(trusted)) is expected
