"""`poetry gitlab-pipelines --watch` in a pseudo-terminal: redraw in place, highlights, Ctrl-C."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pexpect
import pytest

from sandbox.gitlab import GitLabStandIn, Scenario
from tests.fixtures.poetry import POETRY, PoetryCli

pytestmark = pytest.mark.e2e

HOME_CLEAR = "\x1b[?25l\x1b[H\x1b[2J"


def seen(child: pexpect.spawn[str]) -> str:
    """What the last expect() consumed: the text before the match and the match."""
    before = child.before if isinstance(child.before, str) else ""
    after = child.after if isinstance(child.after, str) else ""
    return before + after


def with_web_app_fixed(scenario: Scenario) -> Scenario:
    """The same world, except that web-app's latest pipeline now succeeded."""
    web = scenario.project("demo-group/web-app")
    assert web is not None
    latest = scenario.project_pipelines(web.id)[0]
    assert latest.status == "failed"
    jobs = tuple(replace(job, status="success", failure_reason=None) for job in latest.jobs)
    fixed = replace(latest, status="success", jobs=jobs)
    pipelines = [fixed if p.id == latest.id else p for p in scenario.pipelines.values()]
    return Scenario(
        scenario.groups.values(),
        scenario.projects.values(),
        pipelines,
        name="default-fixed",
        release_project_path=scenario.release_project_path,
    )


def test_watch_redraws_in_place_highlights_changes_and_stops_on_ctrl_c(
    gitlab_standin: GitLabStandIn, poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    env = poetry_cli.environment({"GITLAB_TOKEN": gitlab_standin.tokens.read_api, "TERM": "xterm"})
    child = pexpect.spawn(
        str(POETRY),
        ["gitlab-pipelines", "--host", gitlab_standin.url, "-g", "demo-group", "--watch",
         "--interval", "2"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        dimensions=(40, 160),
        timeout=30,
    )  # fmt: skip
    try:
        # first frame: screen cleared once, the time of the refresh, the failed pipeline
        child.expect_exact(HOME_CLEAR)
        child.expect(r"refreshed (\d\d:\d\d:\d\d)  every \d+s")
        child.expect(r"4 projects: 1 failed, 1 running, 1 success, 1 without pipeline")
        first = seen(child)
        assert "web-app" in first and "▶" not in first

        gitlab_standin.app.scenario = with_web_app_fixed(gitlab_standin.scenario)

        # a later frame: drawn from the top-left over the previous one, not cleared again,
        # with the changed row marked
        child.expect(r"\x1b\[H[^\x1b]*refreshed (\d\d:\d\d:\d\d)")
        child.expect(r"4 projects: [^\r\n]*\r?\n")
        frame = seen(child)
        if "▶" not in frame:  # the change may land one refresh later
            child.expect(r"\x1b\[H[^\x1b]*refreshed")
            child.expect(r"4 projects: [^\r\n]*\r?\n")
            frame = seen(child)
        assert "\x1b[2J" not in frame
        changed = [line for line in frame.splitlines() if line.startswith("▶ ")]
        assert len(changed) == 1 and "web-app" in changed[0] and "success" in changed[0]
        assert re.search(r"\x1b\[K", frame)  # every line cleared to its end
        assert "4 projects: 1 running, 2 success, 1 without pipeline" in frame

        child.sendintr()
        child.expect_exact("\x1b[?25h")  # the cursor comes back
        child.expect_exact("Stopped.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_watch_feeds_a_textfile_collector_and_stops_cleanly_on_sigint(
    gitlab_standin: GitLabStandIn, poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import time

    target = tmp_path / "textfile" / "gitlab.prom"
    target.parent.mkdir()
    env = poetry_cli.environment({"GITLAB_TOKEN": gitlab_standin.tokens.read_api})
    process = subprocess.Popen(
        [str(POETRY), "gitlab-pipelines", "--host", gitlab_standin.url, "-g", "demo-group",
         "--watch", "--interval", "2", "--format", "openmetrics", "--output", str(target)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.exists(), process.stderr
        gitlab_standin.reset_log()
        while not gitlab_standin.request_log and time.monotonic() < deadline:
            time.sleep(0.1)  # a second refresh replaced the file
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    text = target.read_text()
    assert text.endswith("# EOF\n")
    assert (
        'gitlab_ci_pipeline_status{project="demo-group/web-app",ref="main",status="failed"} 1'
        in text
    )
    assert [p.name for p in target.parent.iterdir()] == ["gitlab.prom"]  # no temporary files left
    assert out == ""  # everything went to the file
