"""What a GitLabClient needs to reach one GitLab, and nothing more: its URLs, the TLS material
and the credential. The client never sees the rest of the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poetry_gitlab_release.config.settings import Credential, Settings


@dataclass(frozen=True)
class Connection:
    server_url: str
    api_url: str
    graphql_url: str
    credential: Credential | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_cert_source: str = "client-cert"  # where client_cert came from, for messages
    repository: str = "gitlab"  # Poetry's repository name, named in TLS advice

    @classmethod
    def from_settings(cls, settings: Settings) -> Connection:
        return cls(
            server_url=settings.server_url,
            api_url=settings.api_url,
            graphql_url=settings.graphql_url,
            credential=settings.credential,
            ca_file=settings.ca_file,
            client_cert=settings.client_cert,
            client_cert_source=settings.source_of("client-cert"),
            repository=settings.repository,
        )
