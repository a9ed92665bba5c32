"""The PEP 740 attestation that goes with each file to a PyPI index.

The upload form's `attestations` field is a JSON list of attestation objects (twine and uv
send the `<file>.publish.attestation` files' contents that way; warehouse parses it with
`TypeAdapter(list[Attestation])`, warehouse/attestations/services.py), at most one per
predicate type. pypi.org checks each against the trusted publisher with pypi-attestations'
GitLab policy, so it must be signed in a gitlab.com job of the publisher's project and CI file.

Rekor: these attestations are logged in Rekor v1 (`dsse` 0.0.1 entries). pypi.org has not been
shown to accept Rekor v2 entries, so signing for a PyPI target pins Rekor v1 even where the
trust configuration offers v2 (`pin_rekor_v1`), and a v2 entry is refused here before upload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ConfigError

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

ATTESTATION_SUFFIX = ".publish.attestation"
REKOR_V1_KIND_VERSIONS = frozenset({("dsse", "0.0.1")})


def pin_rekor_v1(trust_config: ClientTrustConfig) -> ClientTrustConfig:
    """Sign with Rekor v1 whatever the signing config prefers (sigstore's `--rekor-version 1`)."""
    trust_config.force_tlog_version = 1
    return trust_config


def attestation_path(dist: Path) -> Path:
    return dist.with_name(dist.name + ATTESTATION_SUFFIX)


def load_attestation(dist: Path) -> dict[str, Any]:
    """The attestation for `dist`, checked to be one PyPI can take; ConfigError otherwise."""
    path = attestation_path(dist)
    try:
        attestation: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path.name} is missing: PyPI needs a PEP 740 attestation for {dist.name}",
            hint="run the sign step (it writes .publish.attestation files) before publishing",
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path.name} is not a readable attestation: {exc}") from None
    entries = (
        attestation.get("verification_material", {}).get("transparency_entries", [])
        if isinstance(attestation, dict)
        else []
    )
    for entry in entries if isinstance(entries, list) else []:
        kind = entry.get("kindVersion", {}) if isinstance(entry, dict) else {}
        pair = (kind.get("kind"), kind.get("version"))
        if pair not in REKOR_V1_KIND_VERSIONS:
            raise ConfigError(
                f"{path.name} is logged as a {pair[0]} {pair[1]} entry, not Rekor v1 dsse 0.0.1",
                hint="PyPI is not shown to accept Rekor v2 entries: sign again with Rekor v1",
            )
    if not entries:
        raise ConfigError(f"{path.name} has no transparency log entry")
    result: dict[str, Any] = attestation
    return result
