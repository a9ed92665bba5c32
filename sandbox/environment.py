"""The environment a GitLab CI release job would have, on the two stand-ins together.

One function so that the combined sandbox, the README demo and the end-to-end tests all build
the job the same way: the Sigstore stand-in trusts the GitLab stand-in as its OIDC issuer, and
the identity token names a project that exists on the GitLab stand-in.
"""

from __future__ import annotations

from typing import Any

from sandbox.gitlab import GitLabStandIn
from sandbox.sigstore import SigstoreStandIn

RELEASE_PROJECT = "demo-group/hello-package"


def release_job_environment(
    gitlab: GitLabStandIn,
    sigstore: SigstoreStandIn,
    *,
    project_path: str = RELEASE_PROJECT,
    ref: str = "v0.1.0",
    ref_type: str = "tag",
    ci_config_path: str = ".gitlab-ci.yml",
    token_lifetime: int = 600,
    identity_server: str | None = None,
    environment: str | None = None,
    **claims: object,
) -> dict[str, str]:
    """CI variables + SIGSTORE_ID_TOKEN + PYPI_ID_TOKEN + CI_JOB_TOKEN of a job in
    `project_path` at `ref`.

    Also sets GITLAB_RELEASE_TRUST_CONFIG to the Sigstore stand-in's trust configuration, which
    a real job would pass as --trust-config for a private Sigstore.

    `identity_server="https://gitlab.com"` (with a Sigstore stand-in whose issuer is
    https://gitlab.com) makes the job's ID tokens and certificates speak as gitlab.com, which
    PyPI's Trusted Publishing and pypi-attestations' GitLab policy require, while its API stays
    the GitLab stand-in; the expected signer is then given as GITLAB_RELEASE_ISSUER/IDENTITY.

    The tokens' project_id, namespace_id and namespace_path are the GitLab stand-in's, as real
    GitLab puts the project's own ids in every job's token; `environment` is the job's
    deployment environment; `claims` replaces any other claim (e.g.
    runner_environment="self-hosted").
    """
    project = gitlab.scenario.project(project_path)
    if project is None:
        raise KeyError(project_path)
    project_id = project.id
    overrides: dict[str, Any] = dict(claims)
    namespace = gitlab.scenario.groups.get(project.namespace_id)
    if namespace is not None:
        overrides.setdefault("namespace_path", namespace.full_path)

    def mint(audience: str) -> str:
        return sigstore.mint_token(
            project_path=project_path,
            project_id=project_id,
            ref=ref,
            ref_type=ref_type,
            ci_config_path=ci_config_path,
            server_url=identity_server or gitlab.url,
            audience=audience,
            lifetime=token_lifetime,
            namespace_id=project.namespace_id,
            environment=environment,
            **overrides,
        )

    token = mint("sigstore")
    variables = sigstore.ci_environment(token)
    if environment:
        variables["CI_ENVIRONMENT_NAME"] = environment
    # `id_tokens: {PYPI_ID_TOKEN: {aud: pypi}}`: what PyPI's Trusted Publishing exchanges.
    variables["PYPI_ID_TOKEN"] = mint("pypi")
    if identity_server is not None:
        variables["GITLAB_RELEASE_ISSUER"] = sigstore.issuer
        variables["GITLAB_RELEASE_IDENTITY"] = sigstore.expected_identity(token)
    variables.update(
        {
            "CI_SERVER_URL": gitlab.url,
            "CI_API_V4_URL": gitlab.api_url,
            "CI_API_GRAPHQL_URL": gitlab.graphql_url,
            "CI_JOB_TOKEN": gitlab.job_token(project_id),
            "CI_DEFAULT_BRANCH": "main",
            "GITLAB_RELEASE_TRUST_CONFIG": str(sigstore.trust_config_path),
        }
    )
    return variables
