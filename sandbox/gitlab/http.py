"""HTTP primitives of the stand-in: request/response values, GitLab error bodies, routing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from sandbox.gitlab.principal import Principal


@dataclass
class Request:
    method: str
    path: str  # raw (percent-encoded) path without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str
    principal: Principal | None = None
    path_params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        values = self.params(name)
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        """``name`` and ``name[]`` values, as Rack merges them."""
        return self.query.get(name, []) + self.query.get(name + "[]", [])

    def bool_param(self, name: str, default: bool) -> bool:
        value = self.param(name)
        if value is None or value == "":
            return default
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "t"):
            return True
        if lowered in ("false", "0", "no", "f"):
            return False
        raise ApiError.grape(f"{name} is invalid")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(
        cls, status: int, payload: object, headers: Iterable[tuple[str, str]] = ()
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, [("Content-Type", "application/json"), *headers])

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), [("Content-Type", f"{content_type}; charset=utf-8")])

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class ApiError(Exception):
    """An error answered with GitLab's status and body."""

    def __init__(
        self, status: int, payload: object, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload
        self.headers = list(headers)

    def response(self) -> Response:
        return Response.json(self.status, self.payload, self.headers)

    @classmethod
    def message(cls, status: int, message: str) -> ApiError:
        return cls(status, {"message": message})

    @classmethod
    def bad_request(cls, reason: str | None = None) -> ApiError:
        return cls.message(400, "400 Bad request" + (f" - {reason}" if reason else ""))

    @classmethod
    def grape(cls, error: str) -> ApiError:
        return cls(400, {"error": error})

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls.message(401, "401 Unauthorized")

    @classmethod
    def forbidden(cls, reason: str | None = None) -> ApiError:
        return cls.message(403, "403 Forbidden" + (f" - {reason}" if reason else ""))

    @classmethod
    def not_found(cls, resource: str | None = None) -> ApiError:
        return cls.message(404, f"404 {resource} Not Found" if resource else "404 Not Found")


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    auth: str  # the auth policy name, see sandbox.gitlab.auth.POLICIES
    handler: Handler


class Router:
    """Matches raw paths: ``{name}`` is one percent-encoded segment, ``{name*}`` the rest.

    An un-encoded ``/`` inside an id therefore matches no route (404), as on GitLab.
    A single trailing slash is ignored.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, auth: str, handler: Handler) -> None:
        names: list[str] = []
        regex = ""
        for part in template.strip("/").split("/"):
            if part.startswith("{") and part.endswith("*}"):
                names.append(part[1:-2])
                regex += "/(.+)"
            elif part.startswith("{"):
                names.append(part[1:-1])
                regex += "/([^/]+)"
            else:
                regex += "/" + re.escape(part)
        self.routes.append(Route(method, re.compile(regex + "/?\\Z"), tuple(names), auth, handler))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        allowed_other = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method != method and not (route.method == "GET" and method == "HEAD"):
                allowed_other = True
                continue
            params = {
                name: unquote(value)
                for name, value in zip(route.names, found.groups(), strict=True)
            }
            return route, params
        if allowed_other:
            raise ApiError.message(405, "405 Method Not Allowed")
        return None
