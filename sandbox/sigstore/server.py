"""The HTTP front: Fulcio, Rekor v1 and OIDC discovery routes on one 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.sigstore.fulcio import Fulcio, FulcioError
from sandbox.sigstore.oidc import TokenMinter
from sandbox.sigstore.rekor import RekorError, RekorLog

_ENTRY_RE = re.compile(r"^/api/v1/log/entries/([0-9a-fA-F]{64}|[0-9a-fA-F]{80})$")


@dataclass
class Faults:
    """Fault toggles: answer 5xx for the next N requests to a service."""

    rekor_fail_next: int = 0
    fulcio_fail_next: int = 0
    status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, service: str) -> bool:
        with self.lock:
            attr = f"{service}_fail_next"
            remaining: int = getattr(self, attr)
            if remaining > 0:
                setattr(self, attr, remaining - 1)
                return True
            return False


@dataclass
class Services:
    fulcio: Fulcio
    rekor: RekorLog
    minter: TokenMinter
    faults: Faults
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    rekor_posts: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; requests are recorded in Services.requests

    def _send(
        self,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        services = self.server.services
        services.requests.append((self.command, self.path, status))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _fault(self, service: str) -> bool:
        if self.server.services.faults.take(service):
            status = self.server.services.faults.status
            self._send(status, {"code": status, "message": f"{service} stand-in: injected failure"})
            return True
        return False

    def do_GET(self) -> None:
        services = self.server.services
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        if path.startswith("/api/v1/") and self._fault("rekor"):
            return
        try:
            if path == "/api/v1/log":
                self._send(200, services.rekor.log_info())
            elif path == "/api/v1/log/publicKey":
                self._send(
                    200, services.rekor.public_key_pem(), content_type="application/x-pem-file"
                )
            elif path == "/api/v1/log/entries":
                raw = parse_qs(parts.query).get("logIndex", [""])[0]
                if not raw.isdigit():
                    raise RekorError(400, "logIndex must be a non-negative integer")
                uuid, entry = services.rekor.get(index=int(raw))
                self._send(200, {uuid: entry})
            elif match := _ENTRY_RE.match(path):
                uuid, entry = services.rekor.get(uuid=match.group(1))
                self._send(200, {uuid: entry})
            elif path == "/api/v2/trustBundle":
                chain = services.fulcio.ca.chain_pem()
                self._send(200, {"chains": [{"certificates": chain}]})
            elif path == "/.well-known/openid-configuration":
                self._send(200, services.minter.discovery())
            elif path in ("/oauth/discovery/keys", "/-/jwks"):
                self._send(200, services.minter.jwks())
            else:
                self._send(404, {"code": 404, "message": "Not Found"})
        except RekorError as exc:
            self._send(exc.status, exc.body(), headers=exc.headers)

    def do_POST(self) -> None:
        services = self.server.services
        path = urlsplit(self.path).path.rstrip("/")
        body = self._body()
        if path == "/api/v2/signingCert":
            if self._fault("fulcio"):
                return
            try:
                response = services.fulcio.signing_cert(self.headers.get("Authorization"), body)
            except FulcioError as exc:
                self._send(exc.status, exc.body())
                return
            self._send(200, response)
            return
        if not path.startswith("/api/v1/"):
            self._send(404, {"code": 404, "message": "Not Found"})
            return
        if self._fault("rekor"):
            return
        try:
            try:
                request = json.loads(body)
            except ValueError as exc:
                raise RekorError(400, "invalid JSON body") from exc
            if path == "/api/v1/log/entries":
                services.rekor_posts += 1
                uuid, entry = services.rekor.add(request)
                self._send(
                    201,
                    {uuid: entry},
                    headers={"Location": f"/api/v1/log/entries/{uuid}", "ETag": uuid},
                )
            elif path == "/api/v1/log/entries/retrieve":
                self._send(200, self._retrieve(request))
            else:
                self._send(404, {"code": 404, "message": "Not Found"})
        except RekorError as exc:
            self._send(exc.status, exc.body(), headers=exc.headers)

    def _retrieve(self, request: Any) -> list[dict[str, Any]]:
        rekor = self.server.services.rekor
        if not isinstance(request, dict):
            raise RekorError(400, "search request must be an object")
        results: list[dict[str, Any]] = []
        for proposed in request.get("entries") or []:
            found = rekor.find(proposed)
            if found:
                results.append({found[0]: found[1]})
        for uuid in request.get("entryUUIDs") or []:
            try:
                found_id, entry = rekor.get(uuid=str(uuid))
                results.append({found_id: entry})
            except RekorError:
                pass
        for index in request.get("logIndexes") or []:
            try:
                found_id, entry = rekor.get(index=int(index))
                results.append({found_id: entry})
            except (RekorError, ValueError):
                pass
        return results


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, services: Services) -> None:
        self.services = services
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop kept-alive client connections, as a service going down would."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class HTTPFront:
    """Owns the listening socket; can be stopped and restarted on the same port."""

    def __init__(self, port: int, services: Services | None = None) -> None:
        self._services = services
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._bind()

    def attach(self, services: Services) -> None:
        self._services = services
        if self._server is not None:
            self._server.services = services

    def _bind(self) -> None:
        self._server = _Server(self.port, self._services)  # type: ignore[arg-type]
        self.port = self._server.server_address[1]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        if self._server is None:
            self._bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name=f"sigstore-standin:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        if self.running:
            self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
