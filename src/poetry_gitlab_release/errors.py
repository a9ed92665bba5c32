"""Exception types. Each carries its exit code and renders as one actionable line.

Exit codes (documented in every command's --help and in docs/):
  0  success
  1  operational failure: a network or registry error, a signature that does not verify,
     an artifact that conflicts with what is already published
  2  usage or configuration error: a bad option, a missing or malformed setting
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class GitlabReleaseError(Exception):
    """Base class: a failure we expected and can explain in one line."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


class UsageError(GitlabReleaseError):
    """The command line is wrong: an unknown step, conflicting options, a bad argument."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A setting is missing, malformed or of the wrong type. Names the key and its source."""


class OperationalError(GitlabReleaseError):
    """Something failed while doing the work."""


class NetworkError(OperationalError):
    """The server could not be reached, or kept failing after retries."""


class TLSError(NetworkError):
    """The server's certificate could not be verified."""


class ApiError(OperationalError):
    """GitLab answered with an error status."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class AuthenticationError(ApiError):
    """401/403: the token is missing, wrong, expired or lacks a scope."""


class NotFoundError(ApiError):
    """404: GitLab hides what a token may not see, so this may also mean 'no access'."""


class BuildError(OperationalError):
    """Building the wheel or sdist failed."""


class SigningError(OperationalError):
    """Signing failed: no identity token, Fulcio or Rekor refused, ..."""


class VerificationError(OperationalError):
    """A signature, a checksum or an identity did not match what we expect."""


class ConflictError(OperationalError):
    """The registry already holds a different file under the same name: nothing was changed."""
