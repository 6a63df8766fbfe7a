"""WebSocket framing by ``wsproto``'s connection API."""

from __future__ import annotations

from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from spdyasgi.protocols.ws.base import Headers, WSProtocol

__all__ = ["WSProtoProtocol"]

MESSAGE_TOO_BIG = 1009


class WSProtoProtocol(WSProtocol):
    """``--ws wsproto``: wsproto frames; message size is bounded here (wsproto has no limit)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = WSConnection(ConnectionType.SERVER)
        self._parts: list[Any] = []
        self._size = 0

    def _lib_receive(self, data: bytes) -> None:
        conn = self.conn
        try:
            conn.receive_data(data)
            events = list(conn.events())
        except RemoteProtocolError as exc:
            self._on_bad_request(str(exc))
            if not self.handshake_started:
                self._respond(400, [], b"Invalid WebSocket handshake.")
            else:
                hint = exc.event_hint
                self._on_close(hint.code if isinstance(hint, CloseConnection) else 1002, "")
            return
        for event in events:
            if isinstance(event, Request):
                self._on_request()
            elif isinstance(event, (TextMessage, BytesMessage)):
                self._parts.append(event.data)
                self._size += len(event.data)
                if self._size > self.max_size:
                    self._close(MESSAGE_TOO_BIG, "message too big")
                    self._on_close(MESSAGE_TOO_BIG, "message too big")
                    return
                if event.message_finished:
                    parts, self._parts, self._size = self._parts, [], 0
                    if isinstance(event, TextMessage):
                        self._on_message("".join(parts))
                    else:
                        self._on_message(b"".join(parts))
            elif isinstance(event, Ping):
                self.transport.write(conn.send(event.response()))
            elif isinstance(event, Pong):
                self._on_pong()
            elif isinstance(event, CloseConnection):
                if conn.state is ConnectionState.REMOTE_CLOSING:
                    self.transport.write(conn.send(event.response()))
                self._on_close(event.code, event.reason or "")
                return

    def _lib_accept(self, subprotocol: str | None, headers: Headers) -> None:
        extensions: list[Extension] = [PerMessageDeflate()] if self.per_message_deflate else []
        event = AcceptConnection(
            subprotocol=subprotocol, extensions=extensions, extra_headers=headers
        )
        self.transport.write(self.conn.send(event))

    def _lib_reject(self, status: int, headers: Headers, body: bytes) -> None:
        conn = self.conn
        out = conn.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        out += conn.send(RejectData(data=body, body_finished=True))
        self.transport.write(out)

    def _lib_send(self, data: str | bytes) -> None:
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self.transport.write(self.conn.send(event))

    def _lib_close(self, code: int, reason: str) -> None:
        if self.conn.state is ConnectionState.OPEN:
            try:
                self.transport.write(self.conn.send(CloseConnection(code=code, reason=reason)))
            except LocalProtocolError:
                pass

    def _lib_ping(self, payload: bytes) -> None:
        self.transport.write(self.conn.send(Ping(payload=payload)))
