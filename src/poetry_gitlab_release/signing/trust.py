"""The root of trust, loaded in one place for signing and for verification: a ClientTrustConfig
file (a private Sigstore), a TrustedRoot file, or Sigstore's production instance (refreshed over
TUF, or the copy embedded in sigstore-python when offline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import ConfigError, NetworkError

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig, TrustedRoot
    from sigstore.verify import Verifier

PRODUCTION_HINT = "check the network, or pass --trust-config FILE for a private Sigstore"


def describe_trust(trust_config: Path | None, trusted_root: Path | None, offline: bool) -> str:
    if trust_config is not None:
        return f"trust config {trust_config}"
    if trusted_root is not None:
        return f"trusted root {trusted_root}"
    return "Sigstore production (embedded copy)" if offline else "Sigstore production (TUF)"


def load_trust_config(
    path: Path | None, *, offline: bool = False, hint: str = PRODUCTION_HINT
) -> ClientTrustConfig:
    """The given ClientTrustConfig JSON, else the public instance's (`hint` if it cannot load)."""
    from sigstore.models import ClientTrustConfig

    if path is None:
        try:
            return ClientTrustConfig.production(offline=offline)
        except Exception as exc:  # noqa: BLE001 - TUF raises many kinds
            raise NetworkError(
                f"cannot load Sigstore's production trust root: {_first_line(exc)}", hint=hint
            ) from None
    try:
        return ClientTrustConfig.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot load the root of trust {path}: cannot read it: {exc.strerror}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any parsing failure means a wrong file
        raise ConfigError(
            f"cannot load the root of trust {path}: not a Sigstore ClientTrustConfig: "
            f"{_first_line(exc)}"
        ) from None


def load_trusted_root(path: Path) -> TrustedRoot:
    from sigstore.models import TrustedRoot

    try:
        return TrustedRoot.from_file(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the root of trust {path}: {_first_line(exc)}") from None


def make_verifier(trust_config: Path | None, trusted_root: Path | None, offline: bool) -> Verifier:
    from sigstore.verify import Verifier

    if trust_config is not None and trusted_root is not None:
        raise ConfigError("give --trust-config or --trusted-root, not both")
    if trusted_root is not None:
        return Verifier(trusted_root=load_trusted_root(trusted_root))
    hint = "retry, or pass --offline to use the copy embedded in sigstore"
    return Verifier(
        trusted_root=load_trust_config(trust_config, offline=offline, hint=hint).trusted_root
    )


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return text or type(exc).__name__
