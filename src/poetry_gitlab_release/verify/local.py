"""Local files: their signature material found on disk, and each file verified."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import UsageError, VerificationError
from poetry_gitlab_release.signing.check import verify_file
from poetry_gitlab_release.signing.material import MaterialKind, SignatureMaterial
from poetry_gitlab_release.signing.results import FileResult, Verdict
from poetry_gitlab_release.verify.report import Progress, Report

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.signing.claims import ClaimPolicy
    from poetry_gitlab_release.signing.identity import ExpectedIdentity


def local_material(
    path: Path, *, bundle_dir: Path | None, bundle: Path | None
) -> SignatureMaterial | None:
    """The first material found: --bundle, then the bundle dir, then beside the file."""
    if bundle is not None:
        kind = (
            MaterialKind.ATTESTATION
            if bundle.name.endswith(MaterialKind.ATTESTATION.value)
            else MaterialKind.BUNDLE
        )
        return SignatureMaterial(kind, _read_bounded(bundle), str(bundle))
    directories = [d for d in (bundle_dir, path.parent) if d is not None]
    for directory in directories:
        for kind in (MaterialKind.BUNDLE, MaterialKind.ATTESTATION):
            candidate = directory / (path.name + kind.value)
            if candidate.is_file():
                return SignatureMaterial(kind, _read_bounded(candidate), str(candidate))
    for directory in directories:
        sig, crt = directory / (path.name + ".sig"), directory / (path.name + ".crt")
        if sig.is_file() and crt.is_file():
            return SignatureMaterial(
                MaterialKind.DETACHED, _read_bounded(sig), str(sig), certificate=_read_bounded(crt)
            )
    return None


def _read_bounded(path: Path) -> bytes:
    from poetry_gitlab_release.gitlab.downloads import MAX_SIGNATURE_BYTES

    with path.open("rb") as handle:
        data = handle.read(MAX_SIGNATURE_BYTES + 1)
    if len(data) > MAX_SIGNATURE_BYTES:
        raise VerificationError(f"{path}: larger than {MAX_SIGNATURE_BYTES} bytes, not a bundle")
    return data


def verify_local(
    paths: Sequence[Path],
    *,
    verifier: Verifier,
    expected: ExpectedIdentity,
    bundle_dir: Path | None,
    bundle: Path | None,
    online_log: bool,
    progress: Progress = lambda _: None,
    claims: ClaimPolicy | None = None,
) -> Report:
    from poetry_gitlab_release.files import sha256_file

    if bundle is not None and len(paths) != 1:
        raise UsageError("--bundle names the material of exactly one file")
    check = functools.partial(
        verify_file, verifier, expected=expected, online_log=online_log, claims=claims
    )
    results: list[FileResult] = []
    for path in paths:
        if not path.is_file():
            results.append(FileResult(path.name, Verdict.FAILED, reason=f"no such file: {path}"))
            continue
        progress(f"verifying {path}")
        digest = sha256_file(path)
        sha256, size = digest.sha256, digest.size
        try:
            material = local_material(path, bundle_dir=bundle_dir, bundle=bundle)
        except (OSError, VerificationError) as exc:
            results.append(
                FileResult(path.name, Verdict.FAILED, reason=str(exc), sha256=sha256, size=size)
            )
            continue
        result = check(name=path.name, sha256=sha256, size=size, path=path, material=material)
        if result.verdict is Verdict.UNSIGNED:
            where = f"{bundle_dir} or {path.parent}" if bundle_dir else str(path.parent)
            result = replace(
                result,
                reason=f"no {path.name}.sigstore.json, .publish.attestation or .sig/.crt in {where}",
            )
        results.append(result)
    return Report(
        subject=", ".join(p.name for p in paths),
        expected=expected.describe(),
        source="local files",
        results=tuple(results),
    )
