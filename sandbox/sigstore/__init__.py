"""A local Sigstore stand-in that the real, unmodified sigstore-python client accepts.

`SigstoreStandIn` serves Fulcio (`POST /api/v2/signingCert`), Rekor v1 and OIDC
discovery/JWKS on one 127.0.0.1 port, mints GitLab CI ID tokens, and writes a
ClientTrustConfig JSON for `sigstore --trust-config FILE` / `ClientTrustConfig.from_json`.

Identity carried by a leaf (Fulcio's gitlab-pipeline template): the SAN URI is
`https://` + the token's `ci_config_ref_uri`, i.e. for `issuer="http://127.0.0.1:8080"`
`https://127.0.0.1:8080/demo-group/hello-package//.gitlab-ci.yml@refs/tags/v1.0.0`
(always `https://`, host with port, double slash); the issuer extensions (1.1, 1.8)
carry `iss` verbatim, e.g. `http://127.0.0.1:8080`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from sandbox.lifecycle import ServedStandIn
from sandbox.sigstore.ca import CertificateAuthority
from sandbox.sigstore.ct import CTLog
from sandbox.sigstore.fulcio import Fulcio
from sandbox.sigstore.oidc import TokenMinter, gitlab_claims, server_fqdn
from sandbox.sigstore.rekor import LogEntry, RekorLog
from sandbox.sigstore.server import Faults, HTTPFront, Services
from sandbox.sigstore.trust import client_trust_config

__all__ = ["LogEntry", "SigstoreStandIn"]

TRUST_CONFIG_FILENAME = "trust_config.json"


class SigstoreStandIn(ServedStandIn):
    """Fulcio + Rekor v1 (+ OIDC discovery) on 127.0.0.1; a context manager.

    `issuer` is the `iss` of minted tokens and the only issuer Fulcio accepts (use the
    GitLab stand-in's URL). `fulcio_template_url` is the `{url}` Fulcio's GitLab template
    puts into extensions 1.12, 1.16 and 1.21; it defaults to `issuer`, as a private Fulcio
    configured for that GitLab instance would have it (public Fulcio's default is
    https://gitlab.com).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        issuer: str = "https://gitlab.com",
        state_dir: Path | None = None,
        rekor_fail_first: int = 0,
        fulcio_template_url: str | None = None,
    ) -> None:
        self.issuer = issuer
        self._front = HTTPFront(port)
        self.port = self._front.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.minter = TokenMinter(issuer)
        self.ct_log = CTLog()
        self.ca = CertificateAuthority(self.ct_log)
        self.fulcio = Fulcio(self.ca, self.minter, template_url=fulcio_template_url)
        self.rekor = RekorLog(origin=f"127.0.0.1:{self.port}")
        self.faults = Faults(rekor_fail_next=rekor_fail_first)
        self._services = Services(self.fulcio, self.rekor, self.minter, self.faults)
        self._front.attach(self._services)
        self._own_state_dir = state_dir is None
        self.state_dir = (
            Path(tempfile.mkdtemp(prefix="sigstore-standin-")) if state_dir is None else state_dir
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.trust_config_path = self.state_dir / TRUST_CONFIG_FILENAME
        self.trust_config_path.write_text(self.trust_config_json(), encoding="utf-8")
        self._token_servers: dict[str, str] = {}
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Serve (again) on the same port; state (log, keys, CA) is kept."""
        self._front.start()

    def stop(self) -> None:
        """Stop serving: connections are refused until `start()`; state is kept."""
        self._front.stop()

    @property
    def running(self) -> bool:
        return self._front.running

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._front.stop()
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- trust -------------------------------------------------------------------------
    def trust_config_json(self) -> str:
        return client_trust_config(
            url=self.url,
            oidc_url=self.issuer,
            ca=self.ca,
            ct_key=self.ct_log.key.public_key(),
            rekor_key=self.rekor.key.public_key(),
        )

    def trusted_root_json(self) -> str:
        document: dict[str, Any] = json.loads(self.trust_config_json())
        return json.dumps(document["trustedRoot"], indent=2) + "\n"

    # -- tokens ------------------------------------------------------------------------
    def mint_token(
        self,
        *,
        project_path: str = "demo-group/hello-package",
        project_id: int = 1001,
        ref: str = "v1.0.0",
        ref_type: str = "tag",
        ci_config_path: str = ".gitlab-ci.yml",
        server_url: str | None = None,
        audience: str | list[str] = "sigstore",
        lifetime: int = 300,
        issued_at: int | None = None,
        namespace_id: int | None = None,
        environment: str | None = None,
        **overrides: object,
    ) -> str:
        """A GitLab CI `id_tokens` JWT; `overrides` replace or add claims (e.g. `iss`)."""
        import time

        server = (server_url or self.issuer).rstrip("/")
        claims = gitlab_claims(
            issuer=self.issuer,
            project_path=project_path,
            project_id=project_id,
            ref=ref,
            ref_type=ref_type,
            ci_config_path=ci_config_path,
            server_url=server,
            audience=audience,
            lifetime=lifetime,
            issued_at=int(time.time()) if issued_at is None else issued_at,
            namespace_id=namespace_id,
            environment=environment,
            **overrides,
        )
        token = self.minter.mint(claims)
        self._token_servers[token] = server
        return token

    @staticmethod
    def token_claims(token: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        return claims

    def expected_identity(self, token: str) -> str:
        """The SAN URI Fulcio puts into the leaf for this token."""
        return f"https://{self.token_claims(token)['ci_config_ref_uri']}"

    def ci_environment(self, token: str) -> dict[str, str]:
        """GitLab CI predefined variables consistent with `token` (plus SIGSTORE_ID_TOKEN)."""
        c = self.token_claims(token)
        server = self._token_servers.get(token, str(c["iss"]).rstrip("/"))
        parts = urlsplit(server)
        project_path = str(c["project_path"])
        ref_uri = str(c.get("ci_config_ref_uri", ""))
        config_path = (
            ref_uri.split("//", 1)[1].rsplit("@", 1)[0] if "//" in ref_uri else ".gitlab-ci.yml"
        )
        project_url = f"{server}/{project_path}"
        namespace = project_path.rsplit("/", 1)[0] if "/" in project_path else project_path
        env = {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_SERVER": "yes",
            "CI_SERVER_URL": server,
            "CI_SERVER_PROTOCOL": parts.scheme,
            "CI_SERVER_HOST": parts.hostname or "",
            "CI_SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
            "CI_SERVER_FQDN": server_fqdn(server),
            "CI_API_V4_URL": f"{server}/api/v4",
            "CI_API_GRAPHQL_URL": f"{server}/api/graphql",
            "CI_PROJECT_ID": str(c["project_id"]),
            "CI_PROJECT_PATH": project_path,
            "CI_PROJECT_NAME": project_path.rsplit("/", 1)[-1],
            "CI_PROJECT_NAMESPACE": namespace,
            "CI_PROJECT_ROOT_NAMESPACE": project_path.split("/", 1)[0],
            "CI_PROJECT_URL": project_url,
            "CI_PROJECT_VISIBILITY": str(c.get("project_visibility", "private")),
            "CI_COMMIT_REF_NAME": str(c["ref"]),
            "CI_COMMIT_REF_PROTECTED": str(c.get("ref_protected", "false")),
            "CI_COMMIT_SHA": str(c["sha"]),
            "CI_COMMIT_SHORT_SHA": str(c["sha"])[:8],
            "CI_CONFIG_PATH": config_path,
            "CI_PIPELINE_ID": str(c["pipeline_id"]),
            "CI_PIPELINE_SOURCE": str(c.get("pipeline_source", "push")),
            "CI_PIPELINE_URL": f"{project_url}/-/pipelines/{c['pipeline_id']}",
            "CI_JOB_ID": str(c["job_id"]),
            "CI_JOB_URL": f"{project_url}/-/jobs/{c['job_id']}",
            "SIGSTORE_ID_TOKEN": token,
        }
        if c.get("ref_type") == "branch":
            env["CI_COMMIT_BRANCH"] = str(c["ref"])
        else:
            env["CI_COMMIT_TAG"] = str(c["ref"])
        return env

    # -- observation and faults --------------------------------------------------------
    @property
    def fulcio_requests(self) -> int:
        """Number of `POST /api/v2/signingCert` requests that reached Fulcio."""
        return self.fulcio.requests

    @property
    def rekor_requests(self) -> int:
        """Number of `POST /api/v1/log/entries` requests that reached the log."""
        return self._services.rekor_posts

    @property
    def rekor_entries(self) -> list[LogEntry]:
        """Everything logged so far, in log order."""
        return list(self.rekor.entries)

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every answered request, fault answers included."""
        return list(self._services.requests)

    def fail_rekor(self, count: int, status: int = 503) -> None:
        """Answer the next `count` Rekor requests with `status` (5xx)."""
        self.faults.status = status
        self.faults.rekor_fail_next = count

    def fail_fulcio(self, count: int, status: int = 503) -> None:
        """Answer the next `count` Fulcio requests with `status` (5xx)."""
        self.faults.status = status
        self.faults.fulcio_fail_next = count
