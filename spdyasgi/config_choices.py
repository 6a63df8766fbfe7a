"""The fixed vocabularies of the settings: allowed choices, numeric bounds, class paths.

Shared by ``Config`` (validation, lazy class lookup) and the CLI (``click.Choice`` and
ranges), so a choice added here reaches both.
"""

from __future__ import annotations

from typing import Literal

from spdyasgi.logging import LOG_LEVELS
from spdyasgi.tls import MIN_VERSIONS

__all__ = [
    "ALPN_CHOICES",
    "HTTP1_CHOICES",
    "HTTP1_CLASSES",
    "INTERFACE_CHOICES",
    "LIFESPAN_CHOICES",
    "LIFESPAN_CLASSES",
    "LOG_LEVELS",
    "LOOP_CHOICES",
    "MAX_CONTROL_FRAME",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "PROXY_PROTOCOL_CHOICES",
    "SPDY_VERSIONS",
    "SSL_MIN_VERSIONS",
    "WS_CHOICES",
    "WS_CLASSES",
    "HTTP1Type",
    "InterfaceType",
    "LifespanType",
    "LoopSetupType",
    "WSType",
]

LoopSetupType = Literal["auto", "asyncio", "uvloop", "none"]
HTTP1Type = Literal["auto", "h11", "httptools"]
LifespanType = Literal["auto", "on", "off"]
InterfaceType = Literal["auto", "asgi3", "asgi2"]
WSType = Literal["auto", "none", "websockets", "wsproto"]

LOOP_CHOICES = ("auto", "asyncio", "uvloop", "none")
HTTP1_CHOICES = ("auto", "h11", "httptools")
WS_CHOICES = ("auto", "none", "websockets", "wsproto")
LIFESPAN_CHOICES = ("auto", "on", "off")
INTERFACE_CHOICES = ("auto", "asgi3", "asgi2")
SPDY_VERSIONS = ("3.1", "3")
#: What ALPN may offer: protocols this server can actually serve.
ALPN_CHOICES = ("spdy/3.1", "spdy/3", "http/1.1")
SSL_MIN_VERSIONS = tuple(MIN_VERSIONS)
PROXY_PROTOCOL_CHOICES = ("off", "v1", "v2", "auto")
MAX_WINDOW = 2**31 - 1
MIN_WINDOW = 65536
MAX_CONTROL_FRAME = 2**24 - 1  # SPDY frame length is a 24-bit field

HTTP1_CLASSES = {
    "h11": "spdyasgi.protocols.http11:H11Protocol",
    "httptools": "spdyasgi.protocols.httptools_impl:HttpToolsProtocol",
}
WS_CLASSES = {
    "websockets": "spdyasgi.protocols.ws.websockets_impl:WebSocketsProtocol",
    "wsproto": "spdyasgi.protocols.ws.wsproto_impl:WSProtoProtocol",
}
LIFESPAN_CLASSES = {
    "auto": "spdyasgi.asgi.lifespan:LifespanOn",
    "on": "spdyasgi.asgi.lifespan:LifespanOn",
    "off": "spdyasgi.asgi.lifespan:LifespanOff",
}
