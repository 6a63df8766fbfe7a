"""WebSocket framing by the ``websockets`` library's sans-IO ``ServerProtocol``."""

from __future__ import annotations

from typing import Any

from websockets.datastructures import Headers as WSHeaders
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from spdyasgi.protocols.ws.base import Headers, WSProtocol

__all__ = ["WebSocketsProtocol"]


class WebSocketsProtocol(WSProtocol):
    """``--ws websockets``: the library parses, validates, (de)compresses and frames."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extensions = [ServerPerMessageDeflateFactory()] if self.per_message_deflate else []
        self.conn = ServerProtocol(extensions=extensions, max_size=self.max_size)
        self.request: Request | None = None
        self.response: Response | None = None
        self._fragments: list[bytes] = []
        self._text = False

    def _lib_receive(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Request):
                self.response = response = conn.accept(event)
                if response.status_code != 101:  # not a valid handshake: 400/426
                    self._on_bad_request(response.body.decode("utf-8", "replace").strip())
                    self._respond(response.status_code, [], bytes(response.body))
                    return
                self.request = event
                self._on_request()
                continue
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self._text = opcode is Opcode.TEXT
                self._fragments = [bytes(event.data)]
            elif opcode is Opcode.CONT:
                self._fragments.append(bytes(event.data))
            elif opcode is Opcode.PONG:
                self._on_pong()
                continue
            elif opcode is Opcode.CLOSE:
                close = Close.parse(event.data) if event.data else None
                code, reason = (close.code, close.reason) if close else (1005, "")
                self._on_close(code, reason)
                return
            else:
                continue  # PING: the library answers it
            if event.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._on_message(payload.decode("utf-8") if self._text else payload)
        if self.request is None and conn.handshake_exc is not None:
            self._on_bad_request(str(conn.handshake_exc))
            self._respond(400, [], b"Invalid WebSocket handshake.")
        elif conn.close_sent is not None and not self.close_sent:
            # The library failed the connection (a frame over max_size: 1009...).
            sent = conn.close_sent
            self.close_sent = True
            self._on_close(sent.code, sent.reason)
        else:
            self._flush()

    def _lib_accept(self, subprotocol: str | None, headers: Headers) -> None:
        response = self.response
        assert response is not None
        if subprotocol:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        for name, value in headers:
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.conn.send_response(response)

    def _lib_reject(self, status: int, headers: Headers, body: bytes) -> None:
        ws_headers = WSHeaders(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        )
        self.conn.send_response(Response(status, self.reason_phrase(status), ws_headers, body))

    def _lib_send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.conn.send_text(data.encode("utf-8"))
        else:
            self.conn.send_binary(data)

    def _lib_close(self, code: int, reason: str) -> None:
        if self.conn.state is State.OPEN:
            self.conn.send_close(code, reason)

    def _lib_ping(self, payload: bytes) -> None:
        self.conn.send_ping(payload)

    def _flush(self) -> None:
        transport = self.transport
        for chunk in self.conn.data_to_send():
            if chunk and not transport.is_closing():
                transport.write(chunk)
