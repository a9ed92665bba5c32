from __future__ import annotations

import pytest
from hello_package import greeting, main


def test_greeting_default() -> None:
    assert greeting() == "Hello from hello-package!"


def test_greeting_named() -> None:
    assert greeting("GitLab") == "Hello, GitLab!"


def test_main_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["Ada"]) == 0
    assert capsys.readouterr().out == "Hello, Ada!\n"
