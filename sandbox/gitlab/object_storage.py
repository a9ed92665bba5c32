"""A separate loopback listener standing in for object storage (S3-like signed URLs).

It serves stored bytes to anyone holding the signed URL, without authentication, and records
every request with the credential headers it carried: a client that forwards its GitLab token
across the redirect shows up here.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

CREDENTIAL_HEADERS = ("authorization", "private-token", "job-token", "deploy-token", "cookie")


@dataclass(frozen=True)
class ObjectRequest:
    method: str
    path: str
    status: int
    credential_headers: dict[str, str]


class ObjectStorage:
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.requests: list[ObjectRequest] = []
        storage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                storage._serve(self, head=False)

            def do_HEAD(self) -> None:
                storage._serve(self, head=True)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def signed_url(self, content: bytes, file_name: str) -> str:
        key = secrets.token_hex(16)
        with self._lock:
            self._objects[key] = content
        signature = secrets.token_hex(16)
        return (
            f"{self.url}/gitlab-packages/{key}/{quote(file_name)}"
            f"?X-Amz-Expires=600&X-Amz-Signature={signature}"
        )

    def _serve(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = urlsplit(handler.path).path
        parts = path.strip("/").split("/")
        credentials = {
            name: value
            for name in CREDENTIAL_HEADERS
            if (value := handler.headers.get(name)) is not None
        }
        with self._lock:
            content = (
                self._objects.get(parts[1])
                if len(parts) == 3 and parts[0] == "gitlab-packages"
                else None
            )
        status = 200 if content is not None else 404
        body = content if content is not None else b"<Error><Code>NoSuchKey</Code></Error>"
        with self._lock:
            self.requests.append(ObjectRequest(handler.command, path, status, credentials))
        handler.send_response(status)
        handler.send_header(
            "Content-Type", "application/octet-stream" if content is not None else "application/xml"
        )
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)
