"""The root of trust for verification: a trust config, a trusted root, or Sigstore's production
root (refreshed over TUF, or the copy embedded in sigstore-python with --offline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import ConfigError, NetworkError

if TYPE_CHECKING:
    from sigstore.verify import Verifier


def describe_trust(trust_config: Path | None, trusted_root: Path | None, offline: bool) -> str:
    if trust_config is not None:
        return f"trust config {trust_config}"
    if trusted_root is not None:
        return f"trusted root {trusted_root}"
    return "Sigstore production (embedded copy)" if offline else "Sigstore production (TUF)"


def make_verifier(trust_config: Path | None, trusted_root: Path | None, offline: bool) -> Verifier:
    from sigstore.models import ClientTrustConfig, TrustedRoot
    from sigstore.verify import Verifier

    if trust_config is not None and trusted_root is not None:
        raise ConfigError("give --trust-config or --trusted-root, not both")
    try:
        if trust_config is not None:
            root = ClientTrustConfig.from_json(
                trust_config.read_text(encoding="utf-8")
            ).trusted_root
        elif trusted_root is not None:
            root = TrustedRoot.from_file(str(trusted_root))
        else:
            try:
                root = ClientTrustConfig.production(offline=offline).trusted_root
            except Exception as exc:  # noqa: BLE001 - TUF raises many kinds
                raise NetworkError(
                    f"cannot load Sigstore's production trust root: {exc}",
                    hint="retry, or pass --offline to use the copy embedded in sigstore",
                ) from None
        return Verifier(trusted_root=root)
    except (OSError, ValueError) as exc:
        which = trust_config or trusted_root
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(f"cannot load the root of trust {which}: {detail}") from None
