"""`gitlab-verify`'s arguments, options and help text (declarations only: cleo, nothing heavy)."""

from __future__ import annotations

from cleo.helpers import argument, option
from cleo.io.inputs.argument import Argument
from cleo.io.inputs.option import Option

from poetry_gitlab_release.cli.base import EXIT_CODES_HELP
from poetry_gitlab_release.cli.options import host_option, transport_options

PINS_FILE = "gitlab-verify.lock"  # verify/pins.py's name, repeated: this module stays light
FORMATS = ("table", "json")
# Options that mean nothing without --lock: given without it, they are a usage error.
LOCK_ONLY = ("pypi-url", "pypi-trust-config", "concurrency")
DEFAULT_CONCURRENCY = 8

ARGUMENTS: list[Argument] = [
    argument(
        "targets",
        "`name==version` or `name` (latest release) from the registry, or paths of local "
        "files (wheels, sdists, any artifact); none with --lock.",
        optional=True,
        multiple=True,
    )
]
OPTIONS: list[Option] = [
    option(
        "gitlab-project",
        None,
        "Project id or full path whose PyPI registry holds the release, and whose generic "
        "registry holds the signatures [env: GITLAB_RELEASE_PROJECT; CI: CI_PROJECT_ID].",
        flag=False,
    ),
    option(
        "group",
        None,
        "Use the group-level index of this group id or path; signatures come from the "
        "project that publishes the package (or --gitlab-project).",
        flag=False,
    ),
    host_option(),
    option(
        "token",
        None,
        "read_api or deploy token (read_package_registry), or @FILE to read it; not needed "
        "for public projects [env: GITLAB_TOKEN; CI: CI_JOB_TOKEN].",
        flag=False,
    ),
    option(
        "dest",
        None,
        "Directory to download the release into [default: a temporary directory, removed "
        "afterwards]. Files that fail verification are deleted from it.",
        flag=False,
    ),
    option(
        "bundle-dir",
        None,
        "Local files: look for <file>.sigstore.json / .publish.attestation / .sig+.crt "
        "here first, then beside each file.",
        flag=False,
    ),
    option(
        "bundle",
        None,
        "Local files: the signature material of the single file given (any name; "
        "*.publish.attestation is read as PEP 740).",
        flag=False,
    ),
    option(
        "identity",
        None,
        "Expected certificate identity (SAN), exactly; replaces the default identity.",
        flag=False,
    ),
    option(
        "issuer",
        None,
        "Expected OIDC issuer [default: the GitLab URL, e.g. https://gitlab.com].",
        flag=False,
    ),
    option(
        "ref",
        None,
        "Expected git ref of the signing pipeline: refs/heads/BRANCH, refs/tags/TAG, or a "
        "bare tag name [default: refs/tags/v{version}].",
        flag=False,
    ),
    option(
        "ref-regex",
        None,
        "Accept any ref fully matching this regular expression (e.g. 'refs/tags/v.*').",
        flag=False,
    ),
    option(
        "ci-config",
        None,
        "Path of the signing project's CI configuration [default: .gitlab-ci.yml].",
        flag=False,
    ),
    option(
        "trust-config",
        None,
        "Sigstore ClientTrustConfig JSON for a private Sigstore instance.",
        flag=False,
    ),
    option(
        "trusted-root",
        None,
        "Sigstore TrustedRoot JSON to verify against (instead of a trust config).",
        flag=False,
    ),
    option(
        "offline",
        None,
        "No TUF refresh: use the production trust root embedded in sigstore-python. "
        "Detached .sig/.crt cannot be verified offline.",
    ),
    option("format", None, "Output format: table or json.", flag=False, default="table"),
    option(
        "junit", None, "Also write a JUnit XML report to FILE (GitLab test report).", flag=False
    ),
    option(
        "install",
        None,
        "After every file verified, pip-install exactly the verified files from --dest "
        "(no index, no second download).",
    ),
    option(
        "python",
        None,
        "Interpreter for --install [default: $VIRTUAL_ENV's, else python3 on PATH].",
        flag=False,
    ),
    # --- immutable claims, pinned signers, the whole lock (#14) ---
    option(
        "project-id",
        None,
        "The signing project's numeric id, which the certificate must carry [default: the "
        "id GitLab gives the project being verified, or the pinned one].",
        flag=False,
    ),
    option(
        "namespace-id",
        None,
        "The signing project's group (namespace) numeric id [default: GitLab's answer, or "
        "the pinned one].",
        flag=False,
    ),
    option(
        "runner-environment",
        None,
        "Require this runner environment: gitlab-hosted or self-hosted.",
        flag=False,
    ),
    option(
        "pipeline-source",
        None,
        "Require a pipeline started this way (push, web, schedule, api, trigger, ...); "
        "repeat or comma-separate for several.",
        flag=False,
        multiple=True,
    ),
    option(
        "environment",
        None,
        "Require the signing job to deploy to this GitLab environment.",
        flag=False,
    ),
    option(
        "pins",
        None,
        f"Pinned signers file [default: {PINS_FILE} beside poetry.lock, in a Poetry project; "
        "outside one, no pinning].",
        flag=False,
    ),
    option(
        "accept-signer-change",
        None,
        "Accept, and pin, a signer (project id, namespace id, identity, issuer) or a presence "
        "of signatures that differs from the pinned one.",
    ),
    option(
        "lock",
        None,
        "Verify every file of poetry.lock: GitLab registry packages by their signatures, "
        "pypi.org packages by their PEP 740 provenance.",
    ),
    option(
        "pypi-url",
        None,
        "The PyPI whose Integrity API --lock asks for provenance [default: https://pypi.org].",
        flag=False,
    ),
    option(
        "pypi-trust-config",
        None,
        "With --lock, the Sigstore ClientTrustConfig JSON that PyPI provenance chains to "
        "[default: Sigstore production, as pypi.org's attestations do, whatever --trust-config "
        "says for the GitLab signatures].",
        flag=False,
    ),
    option(
        "concurrency",
        None,
        "With --lock, how many requests run at once [default: 8].",
        flag=False,
    ),
    *transport_options(),
]
HELP = f"""\
Verifies a release published by <comment>poetry gitlab-release</comment>, as a consumer. Works outside any
Poetry project (pyproject.toml settings are not read).

<b>From the registry</b>
  <comment>poetry gitlab-verify hello-package==1.0.0 --gitlab-project group/hello-package</comment>
  <comment>poetry gitlab-verify hello-package --group group</comment>      (latest final release)
Resolves every file of the release (all wheels and the sdist) from the PyPI simple index,
downloads them into --dest checking the index sha256, fetches each file's signature from the
project's generic registry at <name>/<version>/<file>.sigstore.json (else
.publish.attestation; .sig/.crt only online) and verifies it.

<b>Local files</b>
  <comment>poetry gitlab-verify dist/*.whl dist/*.tar.gz --gitlab-project group/hello-package --ref v1.0.0</comment>
  <comment>poetry gitlab-verify a.txt --bundle a.sigstore.json --identity URI --issuer URL</comment>

<b>Expected signer</b> (the default identity)
  identity  https://HOST/PROJECT_PATH//.gitlab-ci.yml@refs/tags/vVERSION
  issuer    https://HOST (the GitLab URL)
plus the certificate's source repository (ISSUER/PROJECT_PATH) and ref extensions.
--ref, --ref-regex, --ci-config, --identity and --issuer override it. The GitLab project option
is --gitlab-project because Poetry reserves --project/-P for the project directory.

<b>Immutable claims</b>: the certificate's project id and namespace id (Fulcio OIDs
1.3.6.1.4.1.57264.1.15 and .17) must be the ones GitLab gives the project now, or
--project-id/--namespace-id, or the pinned ones; --runner-environment, --pipeline-source and
--environment add requirements. A renamed project whose path someone else took is refused.

<b>Pinned signers</b>: in a Poetry project, the first verification of a package records its
signer in {PINS_FILE} (commit it); later ones fail when the signer, the ids or the presence
of signatures change, until --accept-signer-change.

<b>The whole lock</b>
  <comment>poetry gitlab-verify --lock</comment>     (in a Poetry project; -C DIR elsewhere)
Every file of every poetry.lock package from a GitLab registry must be signed; pypi.org files
are checked against their PEP 740 provenance where PyPI has one ("no provenance" otherwise).
One row per file; exit 1 if a file that should be signed fails.

<b>Root of trust</b>: --trust-config or --trusted-root; else Sigstore production, refreshed over
TUF, or with --offline the copy embedded in sigstore-python. With --lock, PyPI provenance is
checked against Sigstore production (--pypi-trust-config for another instance), so a
self-managed GitLab with its own Sigstore can verify its packages and pypi.org's together.

<b>Output</b>: a table (file, sha256, signer identity, ref, commit, job URL, Rekor log index,
verdict), or --format json; --junit FILE for GitLab's test report. Each failure is also one
line on stderr naming the file and the reason.
{EXIT_CODES_HELP}
Exit 0 only when every file of the release verified: one unsigned or failing file gives 1.
"""
