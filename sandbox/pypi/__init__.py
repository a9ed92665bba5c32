"""A local PyPI stand-in: Trusted Publishing for GitLab, the upload API with PEP 740
attestations, the simple and JSON APIs and the Integrity API, on one 127.0.0.1 port.

`PyPIStandIn` is a context manager. It trusts GitLab ID tokens issued by `issuer` (pypi.org:
`https://gitlab.com` only) whose signature it checks with the keys at `jwks_url` (the
Sigstore stand-in's minter serves them at `/oauth/discovery/keys`), for the trusted publishers
it is given; attestations are verified by pypi-attestations against `trusted_root_json` (the
Sigstore instance it trusts; None: the public one, as pypi.org). With `tls_context` (a
server-side context, e.g. from trustme) it serves HTTPS, which clients such as uv require
for the OIDC exchange.

    with PyPIStandIn(jwks_url=..., trusted_root_json=...) as pypi:
        pypi.add_publisher(TrustedPublisher("hello-package", "demo-group/hello-package"))
        pypi.upload_url   # http://127.0.0.1:PORT/legacy/
        pypi.simple_url   # http://127.0.0.1:PORT/simple/
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from sandbox.lifecycle import ServedStandIn
from sandbox.pypi.index import PackageIndex, StoredFile
from sandbox.pypi.oidc import GITLAB_ISSUER, OIDCExchange, TrustedPublisher
from sandbox.pypi.server import HTTPFront, Services

if TYPE_CHECKING:
    from sandbox.sigstore import SigstoreStandIn

__all__ = ["GITLAB_ISSUER", "PyPIStandIn", "StoredFile", "TrustedPublisher"]


class PyPIStandIn(ServedStandIn):
    def __init__(
        self,
        *,
        jwks_url: str,
        port: int = 0,
        issuer: str = GITLAB_ISSUER,
        audience: str = "pypi",
        trusted_root_json: str | None = None,
        publishers: tuple[TrustedPublisher, ...] = (),
        token_lifetime: int = 900,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.oidc = OIDCExchange(
            jwks_url=jwks_url, issuer=issuer, audience=audience, lifetime=token_lifetime
        )
        self._services = Services(PackageIndex(trusted_root_json=trusted_root_json), self.oidc)
        self._front = HTTPFront(port, self._services, tls_context)
        self.port = self._front.port
        scheme = "http" if tls_context is None else "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._services.base_url = self.url
        self._services.index.help_url = f"{self.url}/help/"
        for publisher in publishers:
            self.add_publisher(publisher)

    @classmethod
    def trusting(
        cls, sigstore: SigstoreStandIn, *publishers: TrustedPublisher, **kwargs: Any
    ) -> PyPIStandIn:
        """A stand-in trusting `sigstore`: its token minter's issuer and keys, its root."""
        return cls(
            jwks_url=f"{sigstore.url}/oauth/discovery/keys",
            issuer=sigstore.issuer,
            trusted_root_json=sigstore.trusted_root_json(),
            publishers=publishers,
            **kwargs,
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        self._front.start()
        return self

    def close(self) -> None:
        self._front.stop()

    # -- addresses ---------------------------------------------------------------------
    @property
    def upload_url(self) -> str:
        return f"{self.url}/legacy/"

    @property
    def simple_url(self) -> str:
        return f"{self.url}/simple/"

    def provenance_url(self, project: str, version: str, filename: str) -> str:
        return f"{self.url}/integrity/{project}/{version}/{filename}/provenance"

    # -- configuration -----------------------------------------------------------------
    @property
    def index(self) -> PackageIndex:
        return self._services.index

    def add_publisher(self, publisher: TrustedPublisher) -> None:
        """Configure a trusted publisher; its project exists from then on (pending ones are
        reified on first use on pypi.org, which makes the project: the effect is the same)."""
        self.oidc.publishers.append(publisher)
        self.index.add_project(publisher.project)

    def api_token(self, project: str) -> str:
        """A classic project-scoped API token for `project` (which is then created)."""
        self.index.add_project(project)
        return self.oidc.api_token(project)

    def age_release(self, project: str, version: str, days: float) -> None:
        self.index.age_release(project, version, days)

    # -- observation -------------------------------------------------------------------
    def files(self, project: str) -> list[StoredFile]:
        found = self.index.project(project)
        if found is None:
            return []
        return [f for release in found.releases.values() for f in release.files]

    @property
    def uploads(self) -> int:
        """Files stored so far (re-uploads of identical files are not counted)."""
        return self.index.uploads

    @property
    def exchanges(self) -> int:
        """Successful mint-token exchanges."""
        return self.oidc.exchanges

    @property
    def requests(self) -> list[tuple[str, str, int, str]]:
        """(method, path, status, Host header) of every answered request."""
        with self._services.lock:
            return list(self._services.requests)
