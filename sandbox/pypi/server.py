"""The stand-in's HTTP front on 127.0.0.1: routes, content negotiation, warehouse's error shape.

Routes (pypi.org's, on one origin; pypi.org splits them over upload.pypi.org and
files.pythonhosted.org):
- `GET /_/oidc/audience`, `POST /_/oidc/mint-token` (sandbox/pypi/oidc.py);
- `POST /legacy/`: the upload API (sandbox/pypi/index.py), HTTP Basic `__token__:<token>`;
- `GET /simple/`, `GET /simple/<project>/`: PEP 503 HTML or PEP 691 JSON by `Accept`
  (`application/vnd.pypi.simple.v1+json`), a non-normalised name redirects (301) to the
  normalised one, files carry PEP 740's `provenance` / `data-provenance`
  (warehouse/api/simple.py);
- `GET /pypi/<project>/json`, `GET /pypi/<project>/<version>/json`: the JSON API;
- `GET /packages/<b2>/<b2>/<b2rest>/<filename>`: the files;
- `GET /integrity/<project>/<version>/<filename>/provenance`: warehouse/api/integrity.py
  (406 `Request not acceptable` unless JSON is acceptable, 404
  `No provenance available for <filename>`).

Upload errors are `_exc_with_message`'s: the message is the reason phrase of the status line
(latin-1, unencodable characters replaced) and the body pyramid's HTML page, or its JSON
`{"message", "code", "title"}` when the client accepts JSON (what uv shows).
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import ssl
import sys
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import Version

from sandbox.pypi.index import PackageIndex, Project, StoredFile, UploadError, UploadForm
from sandbox.pypi.oidc import MintError, OIDCExchange

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
INTEGRITY_JSON = "application/vnd.pypi.integrity.v1+json"
_EXPLANATIONS = {
    400: (
        "Bad Request",
        (
            "The server could not comply with the request since it is either malformed or "
            "otherwise incorrect."
        ),
    ),
    403: ("Forbidden", "Access was denied to this resource."),
}


@dataclass
class Services:
    index: PackageIndex
    oidc: OIDCExchange
    base_url: str = ""
    requests: list[tuple[str, str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def parse_form(content_type: str | None, body: bytes) -> UploadForm:
    header = Message()
    header["content-type"] = content_type or ""
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise UploadError(400, "Upload payload does not have a file.")
    fields: dict[str, list[str]] = {}
    filename = content = part_type = None
    for section in body.split(b"--" + boundary.encode())[1:-1]:
        section = section.removeprefix(b"\r\n")
        head, _, data = section.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        part = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip():
                part[key.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        part_filename = part.get_param("filename", header="content-disposition")
        if name == "content" and isinstance(part_filename, str):
            filename, content = part_filename, data
            # cgi.FieldStorage (what warehouse reads the form with) types a part that has no
            # Content-Type as text/plain.
            part_type = part.get_content_type() if part.get("content-type") else "text/plain"
            continue
        fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return UploadForm(fields, filename, content, part_type)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def services(self) -> Services:
        return self.server.services

    def _send(
        self,
        status: int,
        body: bytes | str | Any,
        *,
        content_type: str = "application/json",
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        with self.services.lock:  # recorded before the client can read the answer
            self.services.requests.append(
                (self.command, urlsplit(self.path).path, status, self.headers.get("Host", ""))
            )
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _warehouse_error(self, status: int, message: str) -> None:
        title, explanation = _EXPLANATIONS.get(status, ("Error", ""))
        reason = message.encode("iso-8859-1", "replace").decode("iso-8859-1")
        if "json" in (self.headers.get("Accept") or ""):
            body: Any = {
                "message": f"{explanation}\n\n\n{message}\n\n",
                "code": f"{status} {reason}",
                "title": title,
            }
            self._send(status, body, reason=reason)
            return
        page = (
            f"<html>\n <head>\n  <title>{status} {html.escape(reason)}</title>\n </head>\n"
            f" <body>\n  <h1>{status} {html.escape(reason)}</h1>\n  {explanation}<br/><br/>\n"
            f"{html.escape(message)}\n\n\n </body>\n</html>"
        )
        self._send(status, page, content_type="text/html; charset=UTF-8", reason=reason)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _identity(self) -> Any:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if username != "__token__":
            return None
        return self.services.oidc.tokens.get(password)

    # -- POST -----------------------------------------------------------------------------
    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/_/oidc/mint-token":
            try:
                self._send(200, self.services.oidc.mint(body))
            except MintError as exc:
                errors = [{"code": exc.code, "description": exc.description}]
                self._send(422, {"message": "Token request failed", "errors": errors})
            return
        if path == "/_/oidc/burn-token":
            self._burn(body)
            return
        if path.rstrip("/") == "/legacy":
            try:
                form = parse_form(self.headers.get("Content-Type"), body)
                self.services.index.upload(form, self._identity())
            except UploadError as exc:
                self._warehouse_error(exc.status, exc.message)
                return
            self._send(200, b"", content_type="text/plain")
            return
        self._send(404, {"message": "Not Found"})

    def _burn(self, body: bytes) -> None:
        """pypi/warehouse#20197: a client burns its Trusted Publishing token after use."""
        try:
            token = json.loads(body).get("token")
        except (ValueError, AttributeError):
            token = None
        if isinstance(token, str) and self.services.oidc.burn(token):
            self._send(200, {"success": True})
            return
        errors = [{"code": "invalid-token", "description": "malformed or invalid token"}]
        self._send(422, {"message": "Token burn failed", "errors": errors})

    # -- GET ------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p]
        services = self.services
        if path == "/_/oidc/audience":
            if not services.oidc.enabled:
                self._send(403, {"message": "Trusted publishing functionality not enabled"})
            else:
                self._send(200, {"audience": services.oidc.audience})
            return
        if parts[:1] == ["simple"]:
            self._simple(parts[1:])
            return
        if parts[:1] == ["pypi"] and parts[-1:] == ["json"] and len(parts) in (3, 4):
            self._json_api(parts[1], parts[2] if len(parts) == 4 else None)
            return
        if parts[:1] == ["packages"] and len(parts) == 5:
            found = services.index.find_file(parts[4])
            if found is None or found[2].path != path:
                self._send(404, {"message": "Not Found"})
                return
            self._send(200, found[2].content, content_type="application/octet-stream")
            return
        if parts[:1] == ["integrity"] and len(parts) == 5 and parts[4] == "provenance":
            self._provenance(parts[1], parts[2], parts[3])
            return
        self._send(404, {"message": "Not Found"})

    def _simple(self, rest: list[str]) -> None:
        index = self.services.index
        accept = self.headers.get("Accept") or ""
        as_json = SIMPLE_JSON in accept
        if not rest:
            names = sorted(p.name for p in index.projects.values())
            if as_json:
                projects = [{"name": n, "_last-serial": 0} for n in names]
                self._send(
                    200,
                    {"meta": {"api-version": "1.4"}, "projects": projects},
                    content_type=SIMPLE_JSON,
                )
                return
            links = "".join(
                f'    <a href="/simple/{canonicalize_name(n)}/">{html.escape(n)}</a>\n'
                for n in names
            )
            page = f"<!DOCTYPE html>\n<html>\n  <body>\n{links}  </body>\n</html>\n"
            self._send(200, page, content_type=SIMPLE_HTML)
            return
        requested = rest[0]
        if requested != canonicalize_name(requested):
            location = f"/simple/{canonicalize_name(requested)}/"
            self._send(301, b"", headers={"Location": location}, content_type="text/plain")
            return
        project = index.project(requested)
        if project is None:
            self._send(404, {"message": "Not Found"})
            return
        files = [(release, f) for release in _sorted_releases(project) for f in release.files]
        if as_json:
            self._send(
                200,
                {
                    "meta": {"api-version": "1.4", "_last-serial": 0},
                    "name": project.normalized,
                    "versions": [r.version for r in _sorted_releases(project)],
                    "files": [self._simple_file(project, r.version, f) for r, f in files],
                },
                content_type=SIMPLE_JSON,
            )
            return
        anchors = []
        for release, stored in files:
            attrs = f' href="{self._file_url(stored)}#sha256={stored.sha256}"'
            if stored.requires_python:
                attrs += f' data-requires-python="{html.escape(stored.requires_python)}"'
            if stored.provenance is not None:
                url = self._provenance_url(project, release.version, stored)
                attrs += f' data-provenance="{html.escape(url)}"'
            anchors.append(f"    <a{attrs}>{html.escape(stored.filename)}</a><br />\n")
        page = (
            '<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" '
            f'content="1.4">\n    <title>Links for {html.escape(project.normalized)}</title>\n'
            f"  </head>\n  <body>\n    <h1>Links for {html.escape(project.normalized)}</h1>\n"
            f"{''.join(anchors)}  </body>\n</html>\n"
        )
        self._send(200, page, content_type=SIMPLE_HTML)

    def _file_url(self, stored: StoredFile) -> str:
        return f"{self.services.base_url}{stored.path}"

    def _provenance_url(self, project: Project, version: str, stored: StoredFile) -> str:
        return (
            f"{self.services.base_url}/integrity/{project.normalized}/{version}/"
            f"{stored.filename}/provenance"
        )

    def _simple_file(self, project: Project, version: str, stored: StoredFile) -> dict[str, Any]:
        return {
            "filename": stored.filename,
            "url": self._file_url(stored),
            "hashes": {"sha256": stored.sha256},
            "requires-python": stored.requires_python,
            "yanked": False,
            "size": len(stored.content),
            "upload-time": _iso(stored.uploaded_at),
            "provenance": (
                self._provenance_url(project, version, stored)
                if stored.provenance is not None
                else None
            ),
        }

    def _json_file(self, stored: StoredFile) -> dict[str, Any]:
        return {
            "filename": stored.filename,
            "url": self._file_url(stored),
            "digests": {
                "md5": stored.md5,
                "sha256": stored.sha256,
                "blake2b_256": stored.blake2_256,
            },
            "md5_digest": stored.md5,
            "size": len(stored.content),
            "packagetype": stored.packagetype,
            "python_version": stored.python_version,
            "requires_python": stored.requires_python,
            "upload_time_iso_8601": _iso(stored.uploaded_at),
            "yanked": False,
            "yanked_reason": None,
        }

    def _json_api(self, name: str, version: str | None) -> None:
        project = self.services.index.project(name)
        releases = _sorted_releases(project) if project is not None else []
        if project is None or not releases:
            self._send(404, {"message": "Not Found"})
            return
        chosen = releases[-1] if version is None else project.releases.get(version)
        if chosen is None:
            self._send(404, {"message": "Not Found"})
            return
        body: dict[str, Any] = {
            "info": {
                "name": project.name,
                "version": chosen.version,
                "summary": chosen.summary,
                "requires_python": chosen.requires_python,
                "package_url": f"{self.services.base_url}/project/{project.normalized}/",
                "yanked": False,
            },
            "last_serial": 0,
            "urls": [self._json_file(f) for f in chosen.files],
            "vulnerabilities": [],
        }
        if version is None:
            body["releases"] = {r.version: [self._json_file(f) for f in r.files] for r in releases}
        self._send(200, body)

    def _provenance(self, name: str, version: str, filename: str) -> None:
        accept = self.headers.get("Accept") or "*/*"
        offers = (INTEGRITY_JSON, "application/json", "*/*", "application/*")
        if not any(offer in accept for offer in offers):
            self._send(406, {"message": "Request not acceptable"})
            return
        project = self.services.index.project(name)
        release = project.releases.get(version) if project is not None else None
        stored = (
            next((f for f in release.files if f.filename == filename), None) if release else None
        )
        if stored is None:
            self._send(404, {"message": "Not Found"})
            return
        if stored.provenance is None:
            self._send(404, {"message": f"No provenance available for {filename}"})
            return
        self._send(200, stored.provenance, content_type=INTEGRITY_JSON)


def _sorted_releases(project: Project) -> list[Any]:
    return sorted(project.releases.values(), key=lambda r: Version(r.version))


def _iso(timestamp: float) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, services: Services, tls: ssl.SSLContext | None) -> None:
        self.services = services
        super().__init__(("127.0.0.1", port), _Handler)
        if tls is not None:
            # Handshake in the handler thread (first read): a client refusing the certificate
            # fails its own connection only (as sandbox/gitlab/server.py does).
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)


class HTTPFront:
    """Owns the listening socket (port 0 picks a free one)."""

    def __init__(self, port: int, services: Services, tls: ssl.SSLContext | None = None) -> None:
        self._server = _Server(port, services, tls)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name=f"pypi-standin:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with contextlib.suppress(OSError):
            self._server.server_close()
