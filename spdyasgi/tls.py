"""TLS for the server: the context (defaults, certificate checks) and handshake failures.

Defaults follow Mozilla's "intermediate" server profile (TLS 1.2 and 1.3; for TLS 1.2
only ECDHE key exchange with AEAD ciphers), which every SPDY client still in use can
complete: OkHttp 2.x, Netty 4.1, Go, curl/OpenSSL 1.0.2+. See docs/tls.md.

Certificate problems are reported as ``TLSConfigError`` naming the file and what is
wrong with it, instead of OpenSSL's ``[SSL] PEM lib``.

Failed handshakes: the listening socket gets a protocol factory that wraps the
connection's protocol in the event loop's own ``SSLProtocol`` (asyncio's or uvloop's,
exactly what ``create_server(ssl=...)`` would build) extended by a few lines, so that
the server knows the peer of a failed handshake, logs why at debug level, counts it in
``HANDSHAKE_FAILURES``, and still sends the TLS alert OpenSSL produced (both loops drop
it otherwise and the client sees a bare close). Successful connections are unchanged.

Writing: both loops' TLS transports encrypt each item of ``writelines`` on its own, so
every item ends a TLS record; ``tls_records`` re-cuts a list of frames into full records
(see there). And the SSL object answers the loop's per-record ``read``/``write``/
``pending`` calls with the C methods directly (see ``_ServerSSLObject``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_CIPHERS",
    "HANDSHAKE_FAILURES",
    "LEGACY_CIPHERS",
    "MIN_VERSIONS",
    "TLS_RECORD",
    "HandshakeFailures",
    "TLSConfigError",
    "create_context",
    "tls_protocol_factory",
    "tls_records",
]

logger = logging.getLogger("spdyasgi.error")

#: Mozilla "intermediate" TLS 1.2 suites (ssl-config.mozilla.org, guideline 5.7) without
#: the DHE-RSA ones: Python's ssl has no DH parameters unless loaded by hand, so OpenSSL
#: would never pick them. TLS 1.3 suites are not set by cipher strings: all three stay on.
DEFAULT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

#: For clients older than TLS 1.2 AEAD (docs/tls.md, "legacy clients"): Mozilla's "old"
#: profile without 3DES and DHE, at OpenSSL security level 0 (TLS 1.0/1.1 sign with SHA-1).
#: Use with ``--ssl-min-version 1.0``.
LEGACY_CIPHERS = (
    DEFAULT_CIPHERS + ":"
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:"
    "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:"
    "AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:@SECLEVEL=0"
)

MIN_VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")

#: The largest plaintext a TLS record carries (RFC 8446 5.1, RFC 5246 6.2.1): OpenSSL cuts
#: one write into records of this size, the last one short.
TLS_RECORD = 16384


class TLSConfigError(ssl.SSLError):
    """A certificate, key or CA file cannot be used; the message names the file.

    An ``ssl.SSLError`` (so an ``OSError``) as before, with a message meant for people.
    """

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


# -- the context -------------------------------------------------------------------------


def create_context(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    password: str | None = None,
    *,
    protocol: int = ssl.PROTOCOL_TLS_SERVER,
    cert_reqs: int = ssl.CERT_NONE,
    ca_certs: str | os.PathLike[str] | None = None,
    ciphers: str | None = DEFAULT_CIPHERS,
    min_version: str = "1.2",
    alpn_protocols: list[str] | None = None,
) -> ssl.SSLContext:
    """A server context, with every file checked first so errors say what is wrong."""
    certfile = os.fspath(certfile)
    keyfile = os.fspath(keyfile) if keyfile is not None else None
    _check_files(certfile, keyfile, password)
    context = ssl.SSLContext(protocol)
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except ssl.SSLError as exc:
        raise TLSConfigError(_explain_load_error(exc, certfile, keyfile, password)) from exc
    context.verify_mode = ssl.VerifyMode(cert_reqs)
    if ca_certs is not None:
        ca_path = os.fspath(ca_certs)
        try:
            context.load_verify_locations(ca_path)
        except (OSError, ValueError) as exc:
            raise TLSConfigError(
                f"cannot load CA certificates from --ssl-ca-certs {ca_path}: {_reason(exc)}"
            ) from exc
    elif cert_reqs != ssl.CERT_NONE:
        raise TLSConfigError("--ssl-cert-reqs 1 or 2 needs --ssl-ca-certs to verify clients")
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TLSConfigError(f"--ssl-ciphers {ciphers!r} selects no cipher") from exc
    if protocol == ssl.PROTOCOL_TLS_SERVER:
        with warnings.catch_warnings():  # 1.0/1.1 are deprecated: asked for explicitly here
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = MIN_VERSIONS[min_version]
    if alpn_protocols:
        context.set_alpn_protocols(alpn_protocols)
    context.sslobject_class = _ServerSSLObject
    return context


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise TLSConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _blocks(data: bytes) -> list[str]:
    return [m.group(1).decode("ascii") for m in _PEM_BLOCK.finditer(data)]


def _is_key(block: str) -> bool:
    return block.endswith("PRIVATE KEY")


def _check_files(certfile: str, keyfile: str | None, password: str | None) -> None:
    """Catch the usual mistakes before OpenSSL reports them as ``PEM lib``."""
    cert_blocks = _blocks(_read(certfile, "--ssl-certfile"))
    key_blocks = _blocks(_read(keyfile, "--ssl-keyfile")) if keyfile else []
    if "CERTIFICATE" not in cert_blocks:
        if any(_is_key(b) for b in cert_blocks) and "CERTIFICATE" in key_blocks:
            raise TLSConfigError(
                f"--ssl-certfile {certfile} holds a private key and --ssl-keyfile {keyfile} "
                "a certificate: the two are swapped"
            )
        found = ", ".join(cert_blocks) or "no PEM block"
        raise TLSConfigError(
            f"--ssl-certfile {certfile} holds no PEM certificate (found: {found})"
        )
    if keyfile is None:
        key_blocks, key_source, key_flag = cert_blocks, certfile, "--ssl-certfile"
        if not any(_is_key(b) for b in key_blocks):
            raise TLSConfigError(
                f"--ssl-certfile {certfile} has a certificate but no private key: "
                "pass the key with --ssl-keyfile"
            )
    else:
        key_source, key_flag = keyfile, "--ssl-keyfile"
        if not any(_is_key(b) for b in key_blocks):
            found = ", ".join(key_blocks) or "no PEM block"
            raise TLSConfigError(f"--ssl-keyfile {keyfile} holds no private key (found: {found})")
    data = _read(key_source, key_flag)
    encrypted = "ENCRYPTED PRIVATE KEY" in key_blocks or b"Proc-Type: 4,ENCRYPTED" in data
    if encrypted and password is None:
        raise TLSConfigError(
            f"{key_flag} {key_source}: the private key is encrypted; "
            "give its password with --ssl-keyfile-password"
        )


def _explain_load_error(
    exc: ssl.SSLError, certfile: str, keyfile: str | None, password: str | None
) -> str:
    key_source = keyfile or certfile
    text = str(exc)
    if exc.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):  # same/other key type
        return f"the private key in {key_source} does not match the certificate in {certfile}"
    if password is not None and ("bad decrypt" in text.lower() or "PEM lib" in text):
        return f"cannot decrypt the private key in {key_source}: wrong --ssl-keyfile-password?"
    return f"cannot load the certificate {certfile} with key {key_source}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


# -- writing ------------------------------------------------------------------------------


def tls_records(chunks: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    """`chunks` re-cut for ``writelines`` on a TLS transport: every record full but the last.

    The TLS transport encrypts each item of ``writelines`` separately (one
    ``SSLObject.write`` each), so each item ends a record: a SPDY frame header written as
    its own item became an 8-byte record, with the record's fixed cost (a write call, a
    nonce, a tag, 22-29 bytes on the wire, and a read call at the peer) paid once more per
    frame. Small items are joined here and topped up with the head of the next large one;
    large items pass as views of whole records, so at most one record per item is copied.
    """
    out: list[bytes | memoryview] = []
    pending: list[bytes | memoryview] = []  # the pieces of a record not yet full
    room = TLS_RECORD
    for chunk in chunks:
        size = len(chunk)
        if size < room:
            pending.append(chunk)
            room -= size
            continue
        view = memoryview(chunk)
        if pending:  # fill the open record with the head of this chunk
            pending.append(view[:room])
            out.append(b"".join(pending))
            pending = []
            view = view[room:]
            size -= room
        tail = size % TLS_RECORD
        if size > tail:
            out.append(view[:size - tail] if tail else view)
        if tail:
            pending.append(view[size - tail:])
        room = TLS_RECORD - tail
    if pending:
        out.append(pending[0] if len(pending) == 1 else b"".join(pending))
    return out


# -- failed handshakes ---------------------------------------------------------------------


class HandshakeFailures:
    """Failed TLS handshakes of this process: a total and a count per OpenSSL reason.

    Read by whoever reports metrics (``HANDSHAKE_FAILURES.total``, ``.by_reason``).
    """

    __slots__ = ("by_reason", "total")

    def __init__(self) -> None:
        self.total = 0
        self.by_reason: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        self.total += 1
        self.by_reason[reason] += 1

    def reset(self) -> None:
        self.total = 0
        self.by_reason.clear()


HANDSHAKE_FAILURES = HandshakeFailures()

# The protocol whose constructor or connection_made() is running: that is where both
# loops call ``wrap_bio()``, so the SSL object can find its connection (one loop per thread).
_building = threading.local()


class _ServerSSLObject(ssl.SSLObject):
    """An SSL object that reports a failed handshake to the connection it belongs to."""

    _owner: Any = None
    _outgoing: ssl.MemoryBIO | None = None

    @classmethod
    def _create(
        cls, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, *args: Any, **kwargs: Any
    ) -> _ServerSSLObject:
        obj: _ServerSSLObject = super()._create(  # type: ignore[misc]
            incoming, outgoing, *args, **kwargs
        )
        owner = getattr(_building, "protocol", None)
        if owner is not None:
            obj._owner = owner
            obj._outgoing = outgoing
        # The loop calls read/write/pending once or twice per TLS record; SSLObject's own
        # are Python methods that only forward to these C ones: bind them directly.
        sslobj = obj._sslobj  # type: ignore[attr-defined]
        vars(obj).update(read=sslobj.read, write=sslobj.write, pending=sslobj.pending)
        return obj

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            owner, self._owner = self._owner, None
            if owner is not None and self._outgoing is not None:
                owner.handshake_failed(exc, self._outgoing.read())
            raise
        self._owner = None  # done: no reference cycle kept for the connection's life


def _tls_protocol_class(base: type[Any]) -> type[Any]:
    class ServerTLSProtocol(base):  # type: ignore[misc]
        """The loop's SSLProtocol, plus: peer address, reason and alert of a failure."""

        __slots__ = ("failure_level", "raw_transport")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.raw_transport: asyncio.Transport | None = None
            self.failure_level = logging.DEBUG
            _building.protocol = self
            try:
                super().__init__(*args, **kwargs)
            finally:
                _building.protocol = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.raw_transport = transport  # type: ignore[assignment]
            _building.protocol = self
            try:
                super().connection_made(transport)
            finally:
                _building.protocol = None

        def connection_lost(self, exc: Exception | None) -> None:
            self.raw_transport = None
            super().connection_lost(exc)

        def handshake_failed(self, exc: ssl.SSLError, alert: bytes) -> None:
            transport = self.raw_transport
            if alert and transport is not None and not transport.is_closing():
                transport.write(alert)  # written at once: the socket is idle mid-handshake
            reason = str(exc.reason or exc.__class__.__name__)
            HANDSHAKE_FAILURES.add(reason)
            level = self.failure_level
            if logger.isEnabledFor(level):
                peer = transport.get_extra_info("peername") if transport is not None else None
                where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "-")
                logger.log(
                    level,
                    "%s - TLS handshake failed: %s (%s)%s",
                    where,
                    reason.replace("_", " ").lower(),
                    exc.library or "SSL",
                    "; alert sent" if alert else "",
                )

    return ServerTLSProtocol


_CLASSES: dict[type[Any], type[Any]] = {}


def _protocol_class_for(loop: asyncio.AbstractEventLoop) -> type[Any]:
    base: type[Any]
    if type(loop).__module__.startswith("uvloop"):
        from uvloop.loop import SSLProtocol as base  # type: ignore[attr-defined,no-redef]
    else:
        from asyncio.sslproto import SSLProtocol as base
    cls = _CLASSES.get(base)
    if cls is None:
        cls = _CLASSES[base] = _tls_protocol_class(base)
    return cls


def tls_protocol_factory(
    factory: Callable[[], asyncio.Protocol],
    context: ssl.SSLContext,
    loop: asyncio.AbstractEventLoop,
    handshake_timeout: float | None = None,
    failure_level: int = logging.DEBUG,
) -> Callable[[], asyncio.Protocol]:
    """Wrap ``factory`` for a listener created *without* ``ssl=`` (see module docstring).

    ``failure_level``: the level of a failed handshake's log line (debug for the public
    port, where scanners fail handshakes all day; the relay's origin port logs at info).
    """
    cls = _protocol_class_for(loop)
    context.sslobject_class = _ServerSSLObject  # the failure hook (create_context sets it too)

    def make() -> asyncio.Protocol:
        protocol = cls(
            loop,
            factory(),
            context,
            None,
            server_side=True,
            ssl_handshake_timeout=handshake_timeout,
        )
        protocol.failure_level = failure_level
        return protocol  # type: ignore[no-any-return]

    return make
