"""The Integrity API reader: a file's PEP 740 provenance as the index publishes it.

`GET {index}/integrity/<project>/<version>/<filename>/provenance` with
`Accept: application/vnd.pypi.integrity.v1+json` (warehouse/api/integrity.py): 200 with
`{"version": 1, "attestation_bundles": [{"publisher": {...}, "attestations": [...]}]}`,
404 `{"message": "No provenance available for <filename>"}` when the file has none,
403 when the index has attestations disabled.
"""

from __future__ import annotations

from typing import Any

from poetry_gitlab_release.errors import OperationalError
from poetry_gitlab_release.pypi.index import IndexConnection

INTEGRITY_JSON = "application/vnd.pypi.integrity.v1+json"


def fetch_provenance(
    connection: IndexConnection, name: str, version: str, filename: str
) -> dict[str, Any] | None:
    """The provenance object, or None when the index has none for this file."""
    urls = connection.urls
    response = connection.get(urls.provenance(name, version, filename), accept=INTEGRITY_JSON)
    if response.status_code == 404:
        return None
    if response.status_code == 403:
        raise OperationalError(
            f"{urls.host} has provenance temporarily disabled", hint="try again later"
        )
    if response.status_code != 200:
        raise OperationalError(
            f"{urls.host}: the Integrity API answered HTTP {response.status_code} for {filename}"
        )
    try:
        provenance: Any = response.json()
    except ValueError:
        provenance = None
    if not isinstance(provenance, dict) or not isinstance(
        provenance.get("attestation_bundles"), list
    ):
        raise OperationalError(f"{urls.host}: the provenance of {filename} is not understood")
    result: dict[str, Any] = provenance
    return result
