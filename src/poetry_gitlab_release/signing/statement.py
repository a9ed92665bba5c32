"""The in-toto Statement v1 a PEP 740 attestation signs, built once and checked once.

Built for the release (subject: the distribution file's name and sha256, predicate
`https://docs.pypi.org/attestations/publish/v1`); checked after DSSE verification by the
release's own verify step and by the consumer, with the same rules and the same messages.
"""

from __future__ import annotations

import json
from typing import Any

from poetry_gitlab_release.errors import VerificationError

PEP740_PREDICATE_TYPE = "https://docs.pypi.org/attestations/publish/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pep740_statement(name: str, sha256: str) -> Any:
    """The in-toto Statement v1 PEP 740 signs: subject = the dist file name and its sha256."""
    from sigstore.dsse import DigestSet, StatementBuilder, Subject

    return (
        StatementBuilder()
        .subjects([Subject(name=name, digest=DigestSet(root={"sha256": sha256}))])
        .predicate_type(PEP740_PREDICATE_TYPE)
        .build()
    )


def check_statement(
    payload_type: str,
    payload: bytes,
    name: str,
    sha256: str,
    *,
    by_name: bool,
    predicate_type: str | None = None,
) -> None:
    """The in-toto statement must name this file's sha256 (and its name, `by_name`).

    With `predicate_type`, the statement must have that predicate and exactly one subject (a
    PEP 740 publish attestation is about one file).
    """
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"the DSSE payload type is {payload_type!r}, not in-toto")
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise VerificationError("the in-toto statement is not JSON") from None
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("the in-toto statement has no subject")
    if predicate_type is not None:
        found = statement.get("predicateType")
        if found != predicate_type:
            raise VerificationError(f"the predicate type is {found!r}, expected {predicate_type}")
        if len(subjects) != 1:
            raise VerificationError("the statement must have exactly one subject")
    for subject in subjects:
        if not isinstance(subject, dict):
            continue
        digests = subject.get("digest")
        digest = digests.get("sha256") if isinstance(digests, dict) else None
        if not isinstance(digest, str) or digest.lower() != sha256:
            continue
        if by_name and subject.get("name") != name:
            raise VerificationError(
                f"the attestation's subject is {subject.get('name')!r}, not this file"
            )
        return
    names = ", ".join(str(s.get("name")) for s in subjects if isinstance(s, dict))
    raise VerificationError(
        f"the attestation is for another artifact (subject {names or '?'}): sha256 differs"
    )
