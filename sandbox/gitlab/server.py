"""The HTTP server: reads requests, applies rate limit, latency and faults, hands them to the
``App`` (sandbox.gitlab.app), logs."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sandbox.gitlab.app import App, LoggedRequest
from sandbox.gitlab.auth import presented_credentials
from sandbox.gitlab.faults import BAD_GATEWAY_HTML, UNAVAILABLE_HTML
from sandbox.gitlab.http import Request, Response


class _ConnectionResetError(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    app: App


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _ConnectionResetError:
            self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST, like a proxy dying mid-request."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        raise _ConnectionResetError

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise _ConnectionResetError
        return body

    def _serve(self) -> None:
        app = self.server.app
        started = time.perf_counter()
        split = urlsplit(self.path)
        headers = {key.lower(): value for key, value in self.headers.items()}
        query = parse_qs(split.query, keep_blank_values=True)
        request = Request(self.command, split.path, query, headers, b"", app.url)
        extra: list[tuple[str, str]] = []
        fault: str | None = None
        has_body = bool(int(headers.get("content-length") or 0)) or "transfer-encoding" in headers

        def log(status: int, principal: str) -> None:
            app.record(
                LoggedRequest(
                    self.command,
                    split.path,
                    split.query,
                    status,
                    _credentials(request),
                    principal,
                    time.perf_counter() - started,
                    fault,
                )
            )

        if app.limiter is not None:
            allowed, extra = app.limiter.check()
            if not allowed:
                response = Response.text(429, "Retry later\n")
                response.headers += extra
                log(429, "")
                self._send(response, close=has_body)
                return
        if app.latency:
            time.sleep(app.latency)
        plan = app.faults
        fault = plan.decide(self.command, split.path, has_body) if plan else None
        if fault == "429" and plan is not None:
            throttled = Response.text(429, "Retry later\n")
            throttled.headers.append(("Retry-After", str(plan.retry_after)))
            log(429, "")
            self._send(throttled, close=has_body)
            return
        if fault in ("502", "503"):
            html = BAD_GATEWAY_HTML if fault == "502" else UNAVAILABLE_HTML
            log(int(fault), "")
            self._send(Response.text(int(fault), html, "text/html"), close=True)
            return
        if fault == "reset":
            log(0, "")
            self._reset()
        if fault == "reset_mid_body":
            length = int(headers.get("content-length") or 0)
            self.rfile.read(max(1, length // 2))
            log(0, "")
            self._reset()
        try:
            request.body = self._read_body()
        except (_ConnectionResetError, ValueError):
            log(0, "")
            self._reset()
        response, principal = app.handle(request)
        response.headers += extra
        log(response.status, principal)
        self._send(response)

    def _send(self, response: Response, *, close: bool = False) -> None:
        self.send_response(response.status)
        for key, value in response.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


def _credentials(request: Request) -> tuple[str, ...]:
    return presented_credentials(request)


def make_server(app: App, port: int, tls_context: ssl.SSLContext | None = None) -> _Server:
    server: _Server = (_Server if tls_context is None else _TLSServer)(
        ("127.0.0.1", port), _Handler
    )
    server.app = app
    scheme = "http"
    if tls_context is not None:
        # The handshake runs in the handler thread on first read, so a client that refuses our
        # certificate fails its own connection without stalling the accept loop.
        server.socket = tls_context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"
    app.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    return server


class _TLSServer(_Server):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client refusing the certificate is what the TLS tests expect: no traceback.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]
