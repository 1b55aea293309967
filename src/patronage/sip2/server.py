"""The SIP2 TCP server: one thread per connection, a bounded number of them, optional TLS.

Why threads and not asyncio: every request is a few short database statements through Django's ORM,
which is synchronous; with asyncio each one would hop to a thread pool anyway. A thread per connection
keeps one database connection per terminal for its whole session (closed when it disconnects), and
self-check fleets are tens of machines, not thousands. ``max_connections`` bounds the threads: a
connection beyond it is closed at once.

Per connection: an idle time-out (nothing received for ``idle_timeout`` seconds closes it), a log-in
deadline (a connection not logged in ``login_timeout`` seconds after it opened is closed, however often it
polls with 99, so that idle strangers cannot hold every slot), a maximum message size (a longer line is
answered with 96 and the connection closed), and a first-byte check (a TLS ClientHello or other binary on a
plain port is closed without an answer). ``shutdown`` stops
accepting, lets each connection finish the request it is in, and waits for the threads.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time

from django.db import connections

from . import handlers, wire

log = logging.getLogger(__name__)


class Sip2Server:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6001,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 64,
        idle_timeout: float = 600.0,
        max_message: int = 4096,
        login_timeout: float = 60.0,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.login_timeout = login_timeout
        self.max_message = max_message
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._acceptor: threading.Thread | None = None
        self.reuse_port = False  # several processes on one port (``patronage sip2 --processes``)

    @property
    def address(self) -> tuple[str, int]:
        assert self._listener is not None  # noqa: S101
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and accept in a background thread; returns the bound address (port 0 picks a free one)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, name="sip2-accept", daemon=True)
        self._acceptor.start()
        log.info("SIP2 server listening on %s:%s%s", *self.address, " (TLS)" if self.ssl_context else "")
        return self.address

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stopping.wait(1.0):
                pass
        finally:
            self.shutdown()

    def connection_count(self) -> int:
        with self._lock:
            return len(self._threads)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; each connection ends after the request it is handling; wait for the threads."""
        self._stopping.set()
        if self._acceptor is not None and self._acceptor is not threading.current_thread():
            self._acceptor.join(timeout)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        for thread in threads:
            thread.join(timeout)

    def _accept_loop(self) -> None:
        assert self._listener is not None  # noqa: S101
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            with self._lock:
                full = len(self._threads) >= self.max_connections
            if full:
                log.warning("SIP2: refusing %s, %s connections open", peer[0], self.max_connections)
                sock.close()
                continue
            thread = threading.Thread(
                target=self._serve, args=(sock, str(peer[0])), name=f"sip2-{peer[0]}", daemon=True
            )
            with self._lock:
                self._threads.add(thread)
                self._sockets.add(sock)
            thread.start()

    def _serve(self, sock: socket.socket, address: str) -> None:
        try:
            Connection(sock, address, self).run()
        except Exception:  # a bug must not take the server down; the connection goes, the server stays
            log.exception("SIP2 connection from %s failed", address)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            connections.close_all()  # this thread's database connection
            with self._lock:
                self._threads.discard(threading.current_thread())
                self._sockets.discard(sock)


class Connection:
    def __init__(self, sock: socket.socket, address: str, server: Sip2Server) -> None:
        self.sock = sock
        self.server = server
        self.session = handlers.Session(address=address)

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def run(self) -> None:
        sock = self.sock
        # Until the log-in, the shorter of the two time-outs; after it, the idle time-out.
        waiting = min(self.server.idle_timeout, self.server.login_timeout)
        kernel = self.server.ssl_context is None and _kernel_timeouts(sock, waiting)
        if not kernel:
            sock.settimeout(waiting)
        if self.server.ssl_context is not None:
            sock = self.server.ssl_context.wrap_socket(sock, server_side=True)
            self.sock = sock
        deadline: float | None = time.monotonic() + self.server.login_timeout
        buffer = b""
        first = True
        while True:
            if deadline is not None and self.session.client is not None:
                deadline = None  # logged in: from now on only the idle time-out applies
                if waiting != self.server.idle_timeout and not (
                    kernel and _kernel_timeouts(sock, self.server.idle_timeout)
                ):
                    sock.settimeout(self.server.idle_timeout)
            elif deadline is not None and time.monotonic() > deadline:
                log.info(
                    "SIP2: %s did not log in within %s s; closing", self.session.address, self.server.login_timeout
                )
                return
            try:
                chunk = sock.recv(4096)
            except (TimeoutError, ssl.SSLError, OSError):
                return  # idle or log-in time-out, TLS failure or reset
            if not chunk:
                return
            buffer += chunk
            if first:
                stripped = buffer.lstrip(b"\r\n")
                if stripped and not stripped[:1].isdigit():
                    log.info("SIP2: %s sent something that is not SIP2; closing", self.session.address)
                    return
                first = not stripped
            while True:
                cut = _line_end(buffer)
                if cut is None:
                    break
                line, buffer = buffer[:cut], buffer[cut + 1 :]
                if len(line) > self.server.max_message:
                    self._send(_resend(self.session))
                    return
                if line.strip(b"\r\n") and not self._handle(line):
                    return
            if len(buffer) > self.server.max_message:
                self._send(_resend(self.session))
                return
            if self.server._stopping.is_set():
                return

    def _handle(self, line: bytes) -> bool:
        """Answer one line; False to close the connection."""
        try:
            request = wire.parse(line, self.session.encoding)
        except wire.MalformedMessage as exc:
            log.info("SIP2: malformed message from %s: %s", self.session.address, exc)
            self._send(_resend(self.session))
            return True
        try:
            response = handlers.answer(self.session, request)
        except handlers.NotLoggedIn:
            log.info("SIP2: %s sent %s before logging in; closing", self.session.address, request.code)
            return False
        checksummed = request.checksummed
        sequence = request.sequence if request.code != "97" else None
        self._send(response.encode(self.session.encoding, sequence=sequence, checksummed=checksummed))
        return True


def _kernel_timeouts(sock: socket.socket, seconds: float) -> bool:
    """The idle time-out kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO) on a blocking socket, instead of
    Python's socket time-out, which polls before every recv and send: two system calls, and two releases of
    the interpreter lock for other threads to grab, per message. A time-out then raises ``BlockingIOError``
    (an ``OSError``). False where the platform refuses, and the caller falls back to ``settimeout``."""
    if seconds <= 0:  # 0 means "no time-out" to the kernel, not "do not wait" as to Python
        return False
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    try:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except (OSError, struct.error):
        return False
    return True


def _line_end(buffer: bytes) -> int | None:
    """Index of the first CR or LF (CRLF leaves an empty line behind, which is skipped)."""
    positions = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
    return min(positions) if positions else None


def _resend(session: handlers.Session) -> bytes:
    """96 "please resend": the answer to a line we cannot read (a bad checksum, a truncated message)."""
    return wire.RESEND.encode("ascii", sequence=None, checksummed=True)


def from_settings() -> Sip2Server:
    from django.conf import settings

    bind = str(getattr(settings, "PATRONAGE_SIP2_BIND", "127.0.0.1:6001"))
    host, _, port = bind.rpartition(":")
    context = None
    cert = getattr(settings, "PATRONAGE_SIP2_TLS_CERT", "")
    if cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, getattr(settings, "PATRONAGE_SIP2_TLS_KEY", "") or None)
    return Sip2Server(
        host.strip("[]") or "127.0.0.1",
        int(port or 6001),
        ssl_context=context,
        max_connections=int(getattr(settings, "PATRONAGE_SIP2_MAX_CONNECTIONS", 64)),
        idle_timeout=float(getattr(settings, "PATRONAGE_SIP2_IDLE_TIMEOUT", 600)),
        max_message=int(getattr(settings, "PATRONAGE_SIP2_MAX_MESSAGE", 4096)),
        login_timeout=float(getattr(settings, "PATRONAGE_SIP2_LOGIN_TIMEOUT", 60)),
    )
