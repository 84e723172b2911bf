"""A TCP proxy on 127.0.0.1 in front of a port, for fault tests: slow answers, none at all, or its own.

``delay`` (seconds) is added before each response is forwarded (the first bytes the upstream sends after
the client sent something); ``blackhole`` makes the proxy accept and read but never forward or answer. Both
can be changed while it runs and apply to connections already open.

``answer`` makes it answer each request itself, as a reverse proxy in front of Prometheus does when it
refuses (an SSO login page, a 403) or as a broken one would (a 100 MB body): a callable giving the raw
HTTP response, piece by piece (:func:`http_response` writes one). The pieces are made as they are sent,
so a 100 MB body costs nothing until a client reads it; ``sent`` counts the bytes it took (a client that
stops reading stops the sending once the socket buffers are full).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator

_REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 502: "Bad Gateway"}


def http_response(
    status: int,
    content_type: str,
    body: Iterable[bytes],
    *,
    length: int | None = None,
    gzip: bool = False,
) -> Iterator[bytes]:
    """An HTTP/1.1 response: with ``length`` a ``Content-Length`` (not checked against the body), else
    chunked; ``gzip`` compresses the body on the fly and says so."""
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}"]
    head.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if gzip:
        head.append("Content-Encoding: gzip")
    yield ("\r\n".join([*head, "Connection: close", "", ""])).encode()
    pack = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzip else None
    for piece in body:
        data = pack.compress(piece) if pack is not None else piece
        if data:
            yield data if length is not None else b"%x\r\n%s\r\n" % (len(data), data)
    tail = pack.flush() if pack is not None else b""
    if length is None:
        yield (b"%x\r\n%s\r\n" % (len(tail), tail) if tail else b"") + b"0\r\n\r\n"
    elif tail:
        yield tail


class SlowProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.delay = 0.0
        self.blackhole = False
        self.answer: Callable[[], Iterable[bytes]] | None = None
        self.sent = 0  # bytes of ``answer`` sent so far
        self._listener: socket.socket | None = None
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.connections = 0  # accepted so far

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._stopped.clear()
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, daemon=True, name="slowproxy-accept").start()

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def _accept(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True, name="slowproxy-conn").start()

    def _answer(self, client: socket.socket, answer: Callable[[], Iterable[bytes]]) -> None:
        request = b""
        try:
            while b"\r\n\r\n" not in request:
                data = client.recv(65536)
                if not data:
                    return
                request += data
            for piece in answer():
                if self._stopped.is_set():
                    break
                client.sendall(piece)
                self.sent += len(piece)
        except OSError:
            pass  # the client hung up: what it did not read was never made
        finally:
            with contextlib.suppress(OSError):
                client.close()

    def _serve(self, client: socket.socket) -> None:
        answer = self.answer
        if answer is not None:
            self._answer(client, answer)
            return
        upstream: socket.socket | None = None
        if not self.blackhole:
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                with contextlib.suppress(OSError):
                    client.close()
                return
            self._track(upstream)
        pending = threading.Event()  # the client sent something not yet answered
        if upstream is not None:
            threading.Thread(
                target=self._downstream, args=(upstream, client, pending), daemon=True, name="slowproxy-down"
            ).start()
        try:
            while not self._stopped.is_set():
                data = client.recv(65536)
                if not data:
                    break
                if self.blackhole or upstream is None:
                    continue  # swallow it: no answer will ever come
                pending.set()
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

    def _downstream(self, upstream: socket.socket, client: socket.socket, pending: threading.Event) -> None:
        try:
            while not self._stopped.is_set():
                data = upstream.recv(65536)
                if not data:
                    break
                if pending.is_set():  # the first bytes of a response
                    pending.clear()
                    end = time.monotonic() + self.delay
                    while (left := end - time.monotonic()) > 0 and not self._stopped.is_set():
                        time.sleep(min(left, 0.05))
                while self.blackhole and not self._stopped.is_set():
                    time.sleep(0.05)
                client.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)

    def __enter__(self) -> SlowProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
