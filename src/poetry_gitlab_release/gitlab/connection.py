"""What a GitLabClient needs to reach one GitLab, and nothing more: its URLs, the credential
and the TLS material. The client never sees the rest of the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from poetry_gitlab_release.tls import TLSConfig

if TYPE_CHECKING:
    from poetry_gitlab_release.config.credentials import Credential
    from poetry_gitlab_release.config.settings import Settings


@dataclass(frozen=True)
class Connection:
    """One GitLab server: REST and GraphQL endpoints, who we are there, how TLS is set up."""

    credential: Credential | None
    server_url: str
    api_url: str
    graphql_url: str
    tls: TLSConfig = field(default_factory=TLSConfig)

    @classmethod
    def from_settings(cls, settings: Settings) -> Connection:
        source = settings.source_of("client-cert")
        tls = TLSConfig(settings.ca_file, settings.client_cert, source, settings.repository)
        urls = (settings.server_url, settings.api_url, settings.graphql_url)
        return cls(settings.credential, *urls, tls=tls)
