"""GitLab claims in Fulcio certificates: decoding (real and stand-in certificates) and policy."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from poetry_gitlab_release.errors import ConfigError
from poetry_gitlab_release.signing.claims import (
    ClaimPolicy,
    GitLabClaims,
    der_utf8_string,
    pipeline_sources,
    read_claims,
)
from sandbox.sigstore.ca import CertificateAuthority
from sandbox.sigstore.ct import CTLog
from sandbox.sigstore.fulcio import gitlab_profile
from sandbox.sigstore.oidc import gitlab_claims

GITLAB_REAL = (
    Path(__file__).resolve().parents[3] / "shared" / "testdata" / "sigstore" / "gitlab-real"
)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(CTLog())


def _leaf(ca: CertificateAuthority, **overrides: object) -> x509.Certificate:
    """A leaf as the Fulcio stand-in issues it for a GitLab token with these claims."""
    claims = gitlab_claims(
        issuer="https://gitlab.example",
        project_path="grp/pkg",
        project_id=4242,
        ref="v1.0.0",
        ref_type="tag",
        ci_config_path=".gitlab-ci.yml",
        server_url="https://gitlab.example",
        audience="sigstore",
        lifetime=300,
        issued_at=int(time.time()),
        **overrides,  # type: ignore[arg-type]
    )
    san, extensions = gitlab_profile(claims, "https://gitlab.example")
    return ca.issue_leaf(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        san_uri=san,
        issuer=str(claims["iss"]),
        extensions=extensions,
    )


def test_reads_every_claim_the_standin_fulcio_embeds(ca: CertificateAuthority) -> None:
    claims = read_claims(_leaf(ca, namespace_id=77, environment="production"))
    assert claims.identity == "https://gitlab.example/grp/pkg//.gitlab-ci.yml@refs/tags/v1.0.0"
    assert claims.issuer == "https://gitlab.example"
    assert claims.project_id == "4242"
    assert claims.namespace_id == "77"
    assert claims.runner_environment == "gitlab-hosted"
    assert claims.pipeline_source == "push"
    assert claims.environment == "production"
    assert claims.ref == "refs/tags/v1.0.0"
    assert claims.source_repository_uri == "https://gitlab.example/grp/pkg"
    assert claims.namespace_uri == "https://gitlab.example/grp"
    assert claims.build_config_uri == claims.identity
    assert claims.build_signer_digest == claims.build_config_digest
    assert claims.job_url is not None and claims.job_url.startswith(
        "https://gitlab.example/grp/pkg/-/jobs/"
    )


def test_no_environment_claim_means_no_extension(ca: CertificateAuthority) -> None:
    claims = read_claims(_leaf(ca))
    assert claims.environment is None
    assert "environment" not in claims.as_dict()


@pytest.mark.skipif(not GITLAB_REAL.is_dir(), reason="../shared/testdata is absent")
def test_reads_a_real_gitlab_com_certificate() -> None:
    bundle = json.loads(
        (GITLAB_REAL / "gitlab_oidc_project-0.0.3.tar.gz.sigstore.json").read_text()
    )
    raw = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    claims = read_claims(x509.load_der_x509_certificate(raw))
    assert claims.project_id == "55235664"
    assert claims.namespace_id == "12885801"
    assert claims.runner_environment == "gitlab-hosted"
    assert claims.pipeline_source == "push"
    assert claims.visibility == "private"
    assert claims.source_repository_uri == "https://gitlab.com/facutuesca/gitlab-oidc-project"
    assert claims.namespace_uri == "https://gitlab.com/facutuesca"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x0c\x03abc", "abc"),
        (b"\x0c\x81\x80" + b"a" * 128, "a" * 128),
        (b"\x0c\x00", ""),
        (b"\x04\x03abc", None),  # OCTET STRING, not UTF8String
        (b"\x0c\x03abcd", None),  # trailing byte
        (b"\x0c\x04abc", None),  # truncated
        (b"\x0c\x81\x03abc", None),  # long form for a short length: not DER
        (b"\x0c\x02\xff\xfe", None),  # not UTF-8
        (b"abc", None),  # legacy raw bytes
    ],
)
def test_der_utf8_string_is_strict(raw: bytes, expected: str | None) -> None:
    assert der_utf8_string(raw) == expected


def test_policy_names_both_values_and_where_the_expectation_came_from() -> None:
    policy = ClaimPolicy(origins={"project_id": "--project-id"}, project_id="100")
    claims = GitLabClaims(project_id="105", namespace_id="10", pipeline_source="web")
    assert policy.mismatches(claims) == ["project id is 105, expected 100 (--project-id)"]
    strict = ClaimPolicy(
        namespace_id="11",
        runner_environment="gitlab-hosted",
        pipeline_sources=("push", "schedule"),
        environment="production",
    )
    assert strict.mismatches(claims) == [
        "namespace id is 10, expected 11",
        "runner environment is missing, expected gitlab-hosted",
        "pipeline source is web, expected push or schedule",
        "environment is missing, expected production",
    ]
    assert (
        strict.mismatches(
            GitLabClaims(
                namespace_id="11",
                runner_environment="gitlab-hosted",
                pipeline_source="schedule",
                environment="production",
            )
        )
        == []
    )


def test_explicit_values_win_over_defaults() -> None:
    policy = ClaimPolicy(project_id="1", origins={"project_id": "--project-id"}).with_defaults(
        project_id=("2", "GitLab"), namespace_id=("3", "GitLab"), environment=(None, "x")
    )
    assert policy.project_id == "1" and policy.origins["project_id"] == "--project-id"
    assert policy.namespace_id == "3" and policy.origins["namespace_id"] == "GitLab"
    assert policy.environment is None


def test_as_sigstore_policy_raises_sigstores_error(ca: CertificateAuthority) -> None:
    from sigstore.errors import VerificationError

    leaf = _leaf(ca, namespace_id=77)
    ClaimPolicy(project_id="4242", namespace_id="77").as_sigstore_policy().verify(leaf)
    with pytest.raises(VerificationError, match="project id is 4242, expected 4243"):
        ClaimPolicy(project_id="4243").as_sigstore_policy().verify(leaf)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"project_id": "group/project"}, "--project-id 'group/project': expected a numeric"),
        ({"namespace_id": "-3"}, "--namespace-id '-3'"),
        ({"runner_environment": "cloud"}, "expected one of gitlab-hosted, self-hosted"),
        ({"pipeline_sources": ("Push!",)}, "--pipeline-source 'Push!'"),
        ({"environment": " "}, "--environment"),
    ],
)
def test_bad_policy_values_are_configuration_errors(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ClaimPolicy(**kwargs)  # type: ignore[arg-type]


def test_pipeline_sources_accept_lists_and_repeats() -> None:
    assert pipeline_sources(["push,web", " schedule ", "push"]) == ("push", "web", "schedule")
    assert ClaimPolicy().empty
    assert not ClaimPolicy(pipeline_sources=("push",)).empty
