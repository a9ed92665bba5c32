"""Trust on first use: gitlab-verify.lock, what counts as a change, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from poetry_gitlab_release.errors import ConfigError
from poetry_gitlab_release.signing.claims import GitLabClaims
from poetry_gitlab_release.verify.pins import (
    Pin,
    PinStatus,
    PinStore,
    Signer,
    default_pins_path,
    gitlab_signer,
    observed_gitlab_pin,
    san_pattern,
)

SAN = "https://gitlab.example/grp/pkg//.gitlab-ci.yml@refs/tags/v1.0.0"


def _claims(**overrides: str | None) -> GitLabClaims:
    values: dict[str, str | None] = {
        "identity": SAN,
        "issuer": "https://gitlab.example",
        "project_id": "100",
        "namespace_id": "10",
    }
    values.update(overrides)
    return GitLabClaims(**values)


def test_san_pattern_keeps_path_ci_file_and_ref_kind() -> None:
    assert san_pattern(SAN) == "https://gitlab.example/grp/pkg//.gitlab-ci.yml@refs/tags/*"
    assert san_pattern(SAN.replace("refs/tags/v1.0.0", "refs/heads/main")).endswith("@refs/heads/*")


def test_gitlab_signer_uses_pep_751_vocabulary() -> None:
    signer = gitlab_signer(_claims(identity=SAN.replace(".gitlab-ci.yml", "ci/release.yml")))
    assert signer.to_table() == {
        "kind": "GitLab",
        "repository": "grp/pkg",
        "workflow_filepath": "ci/release.yml",
        "issuer": "https://gitlab.example",
        "identity": "https://gitlab.example/grp/pkg//ci/release.yml@refs/tags/*",
        "project-id": "100",
        "namespace-id": "10",
    }


def test_first_use_records_and_the_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "gitlab-verify.lock"
    store = PinStore.load(path)
    assert len(store) == 0
    check = store.check(observed_gitlab_pin("Pkg_Name", [_claims(), _claims()]))
    assert check.status is PinStatus.NEW and check.ok
    assert store.check(Pin("other", signed=False)).status is PinStatus.NEW
    assert store.save()
    assert not store.save()  # nothing new: not rewritten
    text = path.read_text()
    assert text.startswith("# Signers trusted on first use")
    assert "[[packages.attestation-identities]]" in text
    again = PinStore.load(path)
    pinned = again.get("pkg-name")
    assert pinned is not None and pinned.signed and len(pinned.signers) == 1
    assert pinned.signers[0].project_id == "100"
    assert again.check(observed_gitlab_pin("pkg.name", [_claims()])).status is PinStatus.SAME
    assert again.check(Pin("OTHER", signed=False)).status is PinStatus.SAME


@pytest.mark.parametrize(
    ("observed", "change"),
    [
        (
            observed_gitlab_pin("pkg", [_claims(project_id="105")]),
            "project id is 105, pinned 100",
        ),
        (
            observed_gitlab_pin("pkg", [_claims(namespace_id="11")]),
            "namespace id is 11, pinned 10",
        ),
        (
            observed_gitlab_pin("pkg", [_claims(identity=SAN.replace("grp/pkg", "grp/pkg-fork"))]),
            (
                "identity is https://gitlab.example/grp/pkg-fork//.gitlab-ci.yml@refs/tags/*, "
                "pinned https://gitlab.example/grp/pkg//.gitlab-ci.yml@refs/tags/*"
            ),
        ),
        (
            observed_gitlab_pin("pkg", [_claims(issuer="https://other.example")]),
            "issuer is https://other.example, pinned https://gitlab.example",
        ),
        (observed_gitlab_pin("pkg", [None]), "the package was signed and is now unsigned"),
    ],
)
def test_a_change_fails_until_accepted(tmp_path: Path, observed: Pin, change: str) -> None:
    path = tmp_path / "gitlab-verify.lock"
    store = PinStore.load(path)
    store.check(observed_gitlab_pin("pkg", [_claims()]))
    store.save()

    store = PinStore.load(path)
    check = store.check(observed)
    assert check.status is PinStatus.CHANGED and not check.ok
    assert change in check.changes
    message = check.message(path)
    assert "gitlab-verify.lock" in message and "--accept-signer-change" in message
    assert not store.save()  # a rejected change is never written

    accepted = PinStore.load(path).check(observed, accept_change=True)
    assert accepted.status is PinStatus.ACCEPTED and accepted.ok


def test_unsigned_then_signed_is_a_change(tmp_path: Path) -> None:
    store = PinStore(tmp_path / "x.lock")
    store.check(Pin("pkg", signed=False))
    check = store.check(observed_gitlab_pin("pkg", [_claims()]))
    assert check.status is PinStatus.CHANGED
    assert check.changes[0].startswith("the package was unsigned and is now signed by")


def test_accepting_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gitlab-verify.lock"
    store = PinStore(path)
    store.check(observed_gitlab_pin("pkg", [_claims()]))
    store.save()
    store = PinStore.load(path)
    store.check(observed_gitlab_pin("pkg", [_claims(project_id="105")]), accept_change=True)
    assert store.save()
    pinned = PinStore.load(path).get("pkg")
    assert pinned is not None and pinned.signers[0].project_id == "105"


def test_unknown_publisher_keys_survive(tmp_path: Path) -> None:
    signer = Signer(kind="GitHub", repository="o/r", extra={"workflow": "release.yml"})
    store = PinStore(tmp_path / "p.lock")
    store.check(Pin("attrs", signed=True, signers=(signer,)))
    store.save()
    loaded = PinStore.load(tmp_path / "p.lock").get("attrs")
    assert loaded is not None and loaded.signers == (signer,)
    changed = Signer(kind="GitHub", repository="o/r", extra={"workflow": "evil.yml"})
    check = PinStore.load(tmp_path / "p.lock").check(Pin("attrs", True, (changed,)))
    assert check.changes == ("workflow is evil.yml, pinned release.yml",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = [", "not valid TOML"),
        ("version = 2\n", "version is 2"),
        ("version = 1\npackages = 3\n", "must be an array of tables"),
        ("version = 1\n[[packages]]\nname = 'x'\n", "needs a `name` and a boolean `signed`"),
        (
            (
                "version = 1\n[[packages]]\nname = 'x'\nsigned = true\n"
                "[[packages.attestation-identities]]\nrepository = 'a/b'\n"
            ),
            "has no `kind`",
        ),
    ],
)
def test_a_malformed_file_is_a_configuration_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gitlab-verify.lock"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        PinStore.load(path)


def test_an_interrupted_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gitlab-verify.lock"
    store = PinStore(path)
    store.check(observed_gitlab_pin("pkg", [_claims()]))
    store.save()
    before = path.read_text()

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    store.check(Pin("other", signed=False))
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.save()
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gitlab-verify.lock"]  # no temp file left
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_default_path_only_in_a_project(tmp_path: Path) -> None:
    assert default_pins_path(tmp_path) is None
    (tmp_path / "poetry.lock").write_text("")
    assert default_pins_path(tmp_path) == tmp_path / "gitlab-verify.lock"
