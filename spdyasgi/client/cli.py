"""`spdyasgi-client`: a curl-like command for SPDY/3.1 servers.

    spdyasgi-client https://127.0.0.1:8443/ -k -i
    spdyasgi-client http://127.0.0.1:8000/upload -d @big.bin -o reply.json
    spdyasgi-client https://host/page --push -v

`http://` URLs use cleartext SPDY by prior knowledge (unless --tls); `https://` URLs use TLS
with ALPN (spdy/3.1, spdy/3). Exit codes follow curl: 0 ok, 2 usage, 6 could not resolve,
7 could not connect, 16 SPDY/protocol failure (including "server does not speak SPDY"),
22 HTTP error with --fail, 23 write error, 26 cannot read the body file, 28 timeout,
35 TLS failure.

The body is uploaded while the response is written out (full duplex), so an echo of any
size completes. No command waits forever: the connect and TLS steps have a 10 s default
limit, and a transfer with no byte moving either way for 60 s (--read-timeout) ends with
exit 28; --max-time bounds the whole run, enforced even if the loop is stuck.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

import click

from .. import __version__
from .connection import SpdyClient
from .errors import SpdyClientError
from .frametrace import FrameTracer
from .upload import iter_file

PROG = "spdyasgi-client"


class _Exit(Exception):
    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


async def _stdin_chunks() -> AsyncIterator[bytes]:
    """Standard input, read by a daemon thread so a blocking read never stalls the loop
    (timeouts keep firing) nor keeps the process alive at exit."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)

    read: Callable[[int], bytes]
    try:  # the raw descriptor: a daemon thread must hold no lock of sys.stdin at exit
        fd = sys.stdin.fileno()
        read = functools.partial(os.read, fd)
    except (AttributeError, OSError, ValueError):  # no descriptor (tests): the buffer
        read = sys.stdin.buffer.read

    def reader() -> None:
        try:
            while True:
                chunk: bytes = read(65536)
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
                if not chunk:
                    return
        except Exception:  # the loop is gone, or stdin failed: end of input either way
            try:
                asyncio.run_coroutine_threadsafe(queue.put(b""), loop)
            except RuntimeError:
                pass

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while chunk := await queue.get():
        yield chunk


def _hard_deadline(seconds: float) -> threading.Timer:
    """--max-time enforced outside the event loop: exit 28 even if a write blocks it."""

    def expire() -> None:
        _err(f"{PROG}: operation timed out after {seconds:g} seconds")
        sys.stderr.flush()
        os._exit(28)

    timer = threading.Timer(seconds + 2.0, expire)
    timer.daemon = True
    timer.start()
    return timer


async def _run(
    url: str,
    method: str | None,
    headers: tuple[str, ...],
    data: str | None,
    output: str | None,
    include: bool,
    verbose: bool,
    insecure: bool,
    cacert: str | None,
    proto: str | None,
    cleartext: bool,
    tls: bool,
    push: bool,
    connect_timeout: float | None,
    read_timeout: float | None,
    unix_socket: str | None,
    fail: bool,
    compat: bool = False,
) -> int:
    header_list: list[tuple[str, str]] = []
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise _Exit(2, f"bad header {item!r} (expected 'Name: value')")
        header_list.append((name.strip(), value.strip()))

    content: bytes | AsyncIterator[bytes] | None = None
    if data is not None:
        if data == "@-":
            content = _stdin_chunks()
        elif data.startswith("@"):
            path = data[1:]
            try:
                size = os.stat(path).st_size
            except OSError as exc:
                raise _Exit(26, f"cannot read {path}: {exc.strerror}") from None
            content = iter_file(path)
            if not any(n.lower() == "content-length" for n, _ in header_list):
                header_list.append(("content-length", str(size)))
        else:
            content = data.encode()
            if not any(n.lower() == "content-length" for n, _ in header_list):
                header_list.append(("content-length", str(len(content))))
    if method is None:
        method = "POST" if data is not None else "GET"

    use_tls: bool | None = None
    if cleartext:
        use_tls = False
    elif tls:
        use_tls = True
    protocols = (proto,) if proto else ("spdy/3.1", "spdy/3")
    cleartext_version = "3" if proto == "spdy/3" else "3.1"
    tracer = FrameTracer(lambda line: _err(line)) if verbose else None

    client = SpdyClient(
        url,
        tls=use_tls,
        verify=not insecure,
        cafile=cacert,
        protocols=protocols,
        cleartext_version=cleartext_version,
        uds=unix_socket,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        accept_push=push,
        trace=tracer,
        compat=compat,
    )
    if verbose and unix_socket:
        _err(f"* Connecting to unix socket {unix_socket} "
             f"({'TLS, ALPN ' + ','.join(protocols) if client.tls else 'cleartext SPDY'})")
    elif verbose:
        _err(f"* Connecting to {client.host} port {client.port} "
             f"({'TLS, ALPN ' + ','.join(protocols) if client.tls else 'cleartext SPDY'})")
    async with client:
        if verbose:
            version = client.version.value if client.version else "?"
            negotiated = client.alpn_protocol or f"spdy/{version} (prior knowledge)"
            _err(f"* Connected; speaking {negotiated}")
        # Returns at the SYN_REPLY: the rest of the body goes up while we write the reply.
        response = await client.request(method, url, headers=header_list, content=content,
                                        timeout=None)
        if fail and response.status >= 400:
            await response.aclose()
            raise _Exit(22, f"the requested URL returned error: {response.status}")
        out: BinaryIO
        if output is not None and output != "-":
            try:
                out = open(output, "wb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise _Exit(23, f"cannot write {output}: {exc.strerror}") from None
        else:
            out = sys.stdout.buffer
        try:
            if include:
                status = f"{response.status} {response.reason}".rstrip()
                lines = [f"{response.http_version or 'HTTP/1.1'} {status}"]
                lines += [f"{name}: {value}" for name, value in response.headers]
                out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            async for chunk in response.aiter_bytes():
                out.write(chunk)
            out.flush()
        except OSError as exc:
            raise _Exit(23, f"failed writing output: {exc.strerror or exc}") from None
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        if push:
            for pushed in response.pushes:
                body = await pushed.read()
                _err(f"push: {pushed.path} status={pushed.status} length={len(body)} "
                     f"stream={pushed.stream_id}")
    return 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url")
@click.option("-X", "--request", "method", metavar="METHOD", help="Request method.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'Name: value'",
              help="Extra request header, repeatable; Host: sets :host. Connection-specific "
                   "headers (Connection, Keep-Alive, Transfer-Encoding...) are dropped.")
@click.option("-d", "--data", "--data-binary", "data", metavar="DATA|@FILE",
              help="Request body; @file streams a file, @- reads stdin. Implies POST.")
@click.option("-o", "--output", metavar="FILE", help="Write the body to FILE.")
@click.option("-i", "--include", is_flag=True, help="Include the response headers in the output.")
@click.option("-v", "--verbose", is_flag=True, help="Print every frame to stderr.")
@click.option("-k", "--insecure", is_flag=True, help="Do not verify the TLS certificate.")
@click.option("--cacert", metavar="FILE",
              help="CA bundle (PEM) to verify the server's certificate with.")
@click.option("--proto", type=click.Choice(["spdy/3.1", "spdy/3"]),
              help="Speak only this SPDY version (the only ALPN id offered; with cleartext, "
                   "the version spoken by prior knowledge). Default: spdy/3.1, then spdy/3.")
@click.option("--cleartext", is_flag=True, help="Cleartext SPDY by prior knowledge, even for https://.")
@click.option("--tls", is_flag=True, help="TLS + ALPN even for http:// URLs.")
@click.option("--push", is_flag=True, help="Accept server pushes and list them on stderr.")
@click.option("--unix-socket", metavar="PATH",
              help="Connect to this Unix socket instead of the URL's host and port (e.g. a "
                   "server started with spdyasgi --uds PATH); the URL still names the host.")
@click.option("-m", "--max-time", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Maximum time for the whole operation (exit 28).")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="SECONDS",
              help="Maximum time for the TCP (or Unix socket) connect, and again for the "
                   "TLS handshake (exit 28).")
@click.option("--read-timeout", type=click.FloatRange(min=0), default=60.0,
              show_default=True, metavar="SECONDS",
              help="Give up (exit 28) when no byte moved either way for this long while "
                   "waiting for the response; 0 waits forever.")
@click.option("-f", "--fail", is_flag=True,
              help="On HTTP status >= 400 print no body and exit 22.")
@click.option("--compat", is_flag=True,
              help="Tolerate a server's known SPDY faults (e.g. DATA past the session "
                   "window), bounded, reported once on stderr.")
@click.version_option(__version__, "-V", "--version", prog_name=PROG,
                      message="%(prog)s %(version)s (SPDY/3.1, SPDY/3)")
def cli(
    url: str,
    method: str | None,
    headers: tuple[str, ...],
    data: str | None,
    output: str | None,
    include: bool,
    verbose: bool,
    insecure: bool,
    cacert: str | None,
    proto: str | None,
    cleartext: bool,
    tls: bool,
    push: bool,
    unix_socket: str | None,
    max_time: float | None,
    connect_timeout: float,
    read_timeout: float,
    fail: bool,
    compat: bool,
) -> None:
    """Fetch URL over SPDY/3.1 (https:// = TLS+ALPN, http:// = cleartext prior knowledge)."""
    if cleartext and tls:
        raise click.UsageError("--cleartext and --tls are mutually exclusive")
    if "://" in url and not url.lower().startswith(("http://", "https://")):
        raise click.UsageError(f"unsupported URL scheme in {url!r}")

    async def main() -> int:
        coro = _run(url, method, headers, data, output, include, verbose, insecure, cacert,
                    proto, cleartext, tls, push, connect_timeout, read_timeout or None,
                    unix_socket, fail, compat)
        if max_time is None:
            return await coro
        try:
            return await asyncio.wait_for(coro, max_time)
        except asyncio.TimeoutError:
            raise _Exit(28, f"operation timed out after {max_time:g} seconds") from None

    code = 0
    if max_time is not None:
        _hard_deadline(max_time)
    try:
        code = asyncio.run(main())
    except _Exit as exc:
        if exc.message:
            _err(f"{PROG}: {exc.message}")
        code = exc.code
    except SpdyClientError as exc:
        _err(f"{PROG}: {exc}")
        code = exc.exit_code
    except ValueError as exc:
        _err(f"{PROG}: {exc}")
        code = 2
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 23
    sys.exit(code)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name=PROG)


if __name__ == "__main__":
    main()
