from __future__ import annotations

import pytest

from poetry_gitlab_release.errors import UsageError
from poetry_gitlab_release.release.command import parse_steps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "build,sign,verify,publish",
            ["build", "sign", "verify", "publish-signatures", "publish-packages", "publish-pypi"],
        ),
        ("publish,verify", ["verify", "publish-signatures", "publish-packages", "publish-pypi"]),
        ("publish-packages , publish-signatures", ["publish-signatures", "publish-packages"]),
        ("configure", ["configure"]),
        ("sign,sign", ["sign"]),
    ],
)
def test_steps_run_in_the_flows_order_with_publish_as_both_halves(
    text: str, expected: list[str]
) -> None:
    assert parse_steps(text) == expected


@pytest.mark.parametrize(
    ("text", "message"), [("build,deploy", "unknown step 'deploy'"), (" , ", "no step given")]
)
def test_bad_steps_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_steps(text)
    assert "publish = publish-signatures,publish-packages" in str(caught.value)
