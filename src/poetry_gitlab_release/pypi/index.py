"""A PyPI-compatible index: its URLs, and the one HTTP connection every call to it uses.

pypi.org is two origins: uploads, the Trusted Publishing endpoints and nothing else at
`https://upload.pypi.org` (`/legacy/`, `/_/oidc/audience`, `/_/oidc/mint-token`; the client
side of pypa/gh-action-pypi-publish's oidc-exchange.py derives both from the upload URL's
host), the JSON, simple and Integrity APIs at `https://pypi.org`. TestPyPI is the same at
`https://test.pypi.org`. Any other index (e.g. a private warehouse or a stand-in) is taken to
serve everything on its upload URL's origin.

Credentials (the GitLab ID token, the upload token) go to the upload origin only: requests that
carry one never follow a redirect, so a 3xx cannot move them to another host.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from poetry_gitlab_release.errors import ConfigError, NetworkError

PYPI_UPLOAD_URL = "https://upload.pypi.org/legacy/"
TESTPYPI_UPLOAD_URL = "https://test.pypi.org/legacy/"
ALIASES = {"pypi": PYPI_UPLOAD_URL, "testpypi": TESTPYPI_UPLOAD_URL}
_READ_ORIGINS = {"upload.pypi.org": "https://pypi.org", "test.pypi.org": "https://test.pypi.org"}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "poetry-gitlab-release"


@dataclass(frozen=True)
class IndexURLs:
    """Where each endpoint of one index lives."""

    upload: str
    read_origin: str

    @classmethod
    def from_upload_url(cls, url: str, *, allow_http: bool = False) -> IndexURLs:
        """From an upload URL (or `pypi` / `testpypi`)."""
        url = ALIASES.get(url.strip().lower(), url.strip())
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(
                f"PyPI upload URL {url!r} is not an http(s) URL",
                hint="use e.g. https://upload.pypi.org/legacy/, https://test.pypi.org/legacy/, "
                "or pypi / testpypi",
            )
        if parts.scheme == "http" and not allow_http and parts.hostname not in _LOOPBACK:
            raise ConfigError(
                f"PyPI upload URL {url!r} is plain http: tokens would travel unencrypted",
                hint="use https, or --allow-insecure-http for a test index",
            )
        if not url.endswith("/"):
            url += "/"
        origin = f"{parts.scheme}://{parts.netloc}"
        return cls(upload=url, read_origin=_READ_ORIGINS.get(parts.netloc.lower(), origin))

    @classmethod
    def for_reading(cls, index_url: str) -> IndexURLs:
        """An index only read from (the JSON, simple and Integrity APIs at `index_url`, e.g.
        https://pypi.org), never uploaded to."""
        return cls(upload=index_url, read_origin=index_url.rstrip("/"))

    @property
    def upload_origin(self) -> str:
        parts = urlsplit(self.upload)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        return urlsplit(self.upload).netloc

    @property
    def audience(self) -> str:
        return f"{self.upload_origin}/_/oidc/audience"

    @property
    def mint_token(self) -> str:
        return f"{self.upload_origin}/_/oidc/mint-token"

    @property
    def burn_token(self) -> str:
        return f"{self.upload_origin}/_/oidc/burn-token"

    def release_json(self, name: str, version: str) -> str:
        return f"{self.read_origin}/pypi/{name}/{version}/json"

    def provenance(self, name: str, version: str, filename: str) -> str:
        parts = "/".join(quote(part, safe="") for part in (name, version, filename))
        return f"{self.read_origin}/integrity/{parts}/provenance"

    def publishing_settings(self, name: str) -> str:
        """Where a project's trusted publishers are configured (warehouse's manage pages)."""
        return f"{self.read_origin}/manage/project/{name}/settings/publishing/"


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class IndexConnection:
    """One httpx client for one index: retries on reads and uploads, no redirect with secrets."""

    def __init__(
        self,
        urls: IndexURLs,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 60.0,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.urls = urls
        self._client = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=15.0),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        self._attempts = attempts
        self._sleep = sleep

    def __enter__(self) -> IndexConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()  # the connection is only ever used in a with-block

    def _send(
        self, method: str, url: str, *, retry: bool, follow: bool = False, **kwargs: Any
    ) -> httpx.Response:
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.request(method, url, **kwargs)
                hops = 0
                while follow and response.next_request is not None and hops < 5:
                    response = self._client.send(response.next_request)
                    hops += 1
            except httpx.TransportError as exc:
                if not retry or attempt == self._attempts:
                    raise NetworkError(
                        f"cannot reach {urlsplit(url).netloc}: {type(exc).__name__}: {exc}",
                        hint="check the URL, the network, and the CA bundle (--ca-file)",
                    ) from None
            else:
                if not (retry and response.status_code in RETRY_STATUSES):
                    return response
                if attempt == self._attempts:
                    return response
            self._sleep(min(2.0 ** (attempt - 1), 10.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, url: str, *, accept: str = "application/json") -> httpx.Response:
        """A read without credentials; redirects are followed (e.g. pypi.org's name fixes)."""
        return self._send("GET", url, retry=True, follow=True, headers={"Accept": accept})

    def post_json(self, url: str, payload: Mapping[str, Any]) -> httpx.Response:
        """A POST carrying a secret: never retried blindly, never redirected."""
        return self._send("POST", url, retry=False, json=dict(payload))

    def post_upload(
        self,
        url: str,
        *,
        token: str,
        content_type: str,
        content_length: int,
        body: Callable[[], Iterable[bytes] | bytes],
    ) -> httpx.Response:
        """The legacy upload: HTTP Basic `__token__`; retried (PyPI takes an identical file
        again as a no-op), never redirected."""
        return self._send(
            "POST",
            url,
            retry=True,
            auth=("__token__", token),
            headers={
                "Content-Type": content_type,
                "Content-Length": str(content_length),
                "Accept": "application/json",
            },
            content=_Stream(body),
        )


class _Stream:
    """An iterable body that can be iterated again (a retried upload streams the file anew)."""

    def __init__(self, factory: Callable[[], Iterable[bytes] | bytes]) -> None:
        self._factory = factory

    def __iter__(self) -> Any:
        produced = self._factory()
        return iter([produced]) if isinstance(produced, bytes) else iter(produced)
