"""ASGI middleware that trusts ``X-Forwarded-For``/``-Proto`` and ``Forwarded`` from known proxies.

Behind a load balancer the socket peer is the balancer; the real client and scheme are
in headers the balancer adds. Those headers are only believed when the direct peer is
in ``trusted_hosts`` (IP addresses, CIDR networks, or ``"*"``), because any client
could send them.

``X-Forwarded-*`` wins over RFC 7239 ``Forwarded`` when both are present. In a chain
(``X-Forwarded-For: client, proxy1, proxy2``) the right-most address that is *not* a
trusted proxy is taken as the client, so a client cannot spoof its address by
prepending entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_SIZE = 4096
_FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"})


class TrustedHosts:
    """Membership test for the ``forwarded_allow_ips`` setting."""

    def __init__(self, trusted: str | Iterable[str]) -> None:
        items = trusted.split(",") if isinstance(trusted, str) else list(trusted)
        entries = [item.strip() for item in items if item.strip()]
        self.always_trust = "*" in entries
        self.networks: list[_Network] = []
        self.literals: set[str] = set()
        self._cache: dict[str, bool] = {}
        for entry in entries:
            if entry == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                # Non-IP peers (e.g. "unix:" sockets) are matched literally.
                self.literals.add(entry)

    def __contains__(self, host: object) -> bool:
        if self.always_trust:
            return True
        if not isinstance(host, str):
            return False
        # Parsing an address costs more than the rest of a request: remember answers.
        cached = self._cache.get(host)
        if cached is not None:
            return cached
        answer = self._lookup(host)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[host] = answer
        return answer

    def _lookup(self, host: str) -> bool:
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_from_chain(self, chain: list[str]) -> str | None:
        """The right-most untrusted hop of a forwarding chain (or the left-most if all trusted)."""
        for host in reversed(chain):
            if host not in self:
                return host
        return chain[0] if chain else None


def _parse_forwarded(value: str) -> tuple[list[str], str | None]:
    """Return the ``for=`` chain and the last element's ``proto=`` of an RFC 7239 header."""
    chain: list[str] = []
    proto: str | None = None
    for element in value.split(","):
        element_proto: str | None = None
        for pair in element.split(";"):
            key, sep, raw = pair.partition("=")
            if not sep:
                continue
            key = key.strip().lower()
            val = raw.strip().strip('"')
            if key == "for":
                chain.append(_strip_port(val))
            elif key == "proto":
                element_proto = val.lower()
        if element_proto is not None:
            proto = element_proto
    return chain, proto


def _strip_port(node: str) -> str:
    """``[2001:db8::1]:4711`` → ``2001:db8::1``; ``192.0.2.1:80`` → ``192.0.2.1``."""
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else node[1:]
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


class ProxyHeadersMiddleware:
    """Rewrites ``scope["client"]`` and ``scope["scheme"]`` from trusted forwarding headers."""

    def __init__(self, app: ASGIApp, trusted_hosts: str | Iterable[str] = "127.0.0.1") -> None:
        self.app = app
        self.trusted_hosts = TrustedHosts(trusted_hosts)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the app's awaitable: no coroutine frame of our own
        # per request (CPU, and memory for every long-lived stream). The common case, no
        # forwarding header at all, costs one pass over the names and no further call.
        if scope["type"] in ("http", "websocket"):
            for header in scope.get("headers", ()):
                if header[0] in _FORWARDING:  # ASGI header names are lowercase
                    self._rewrite(scope)
                    break
        return self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        client = scope.get("client")
        peer = client[0] if client else None
        if peer is None:
            if not self.trusted_hosts.always_trust:
                return
        elif peer not in self.trusted_hosts:
            return

        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", ()):
            if name not in _FORWARDING:
                continue
            if name in headers:  # repeated header lines form one comma-separated list
                headers[name] += b"," + bytes(value)
            else:
                headers[name] = bytes(value)

        chain: list[str] = []
        proto: str | None = None
        if b"x-forwarded-for" in headers or b"x-forwarded-proto" in headers:
            if b"x-forwarded-proto" in headers:
                last = headers[b"x-forwarded-proto"].decode("latin-1").split(",")[-1]
                proto = last.strip().lower()
            if b"x-forwarded-for" in headers:
                raw = headers[b"x-forwarded-for"].decode("latin-1")
                chain = [_strip_port(h.strip()) for h in raw.split(",") if h.strip()]
        elif b"forwarded" in headers:
            chain, proto = _parse_forwarded(headers[b"forwarded"].decode("latin-1"))

        if proto in ("http", "https", "ws", "wss"):
            if scope["type"] == "websocket":
                proto = {"http": "ws", "https": "wss"}.get(proto, proto)
            else:
                proto = {"ws": "http", "wss": "https"}.get(proto, proto)
            scope["scheme"] = proto

        host = self.trusted_hosts.client_from_chain(chain)
        if host:
            scope["client"] = (host, 0)
