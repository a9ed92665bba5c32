"""`poetry gitlab-pipelines`: the latest pipeline of every project in a group, in one screen."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cleo.helpers import option
from cleo.io.inputs.option import Option
from cleo.io.outputs.output import Type, Verbosity

from poetry_gitlab_release.cli.base import GitlabCommand
from poetry_gitlab_release.cli.options import (
    ca_file_option,
    client_cert_option,
    host_option,
    insecure_http_option,
)
from poetry_gitlab_release.config.poetry_sources import poetry_credential
from poetry_gitlab_release.config.settings import Settings
from poetry_gitlab_release.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from poetry_gitlab_release.pipelines.model import Snapshot

FORMATS = ("table", "json", "openmetrics")
DEFAULT_INTERVAL = 10
DEFAULT_STAGES_WIDTH = 10
DEFAULT_CONCURRENCY = 8

EXIT_CODES_HELP = """
<b>Exit codes</b> (a one-shot run can gate a CI job)
  0  every shown pipeline succeeded (projects without a pipeline do not count);
     in watch mode: stopped with Ctrl-C
  1  a shown pipeline failed, or an operational failure (network, GitLab error,
     unknown group, a token GitLab refuses)
  2  usage or configuration error (bad option, no group, a CI job or deploy token)
  3  no shown pipeline failed, but some did not succeed (running, pending, manual,
     canceled, skipped, ...)
  130 interrupted (Ctrl-C) during a one-shot run
"""


@dataclass(frozen=True)
class ViewOptions:
    """The command-line options that shape fetching and output (not Settings)."""

    format: str
    watch: bool
    interval: float
    stages_width: int
    excludes: tuple[str, ...]
    failed_only: bool
    include_archived: bool
    logs: int
    api: str
    concurrency: int
    output: Path | None


def _int_option(value: object, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UsageError(f"--{name} takes a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise UsageError(f"--{name} must be between {low} and {high}, not {number}")
    return number


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one step (a textfile collector must never read half a file)."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigError(f"cannot write --output {str(path)!r}: {exc.strerror}") from None


class PipelinesCommand(GitlabCommand):
    name = "gitlab-pipelines"
    description = "Show the latest pipeline of every project in a GitLab group, stage by stage."
    setting_options: ClassVar[dict[str, str]] = {
        "host": "host",
        "token": "token",
        "group": "group",
        "group-id": "group",
        "repository": "repository",
        "ca-file": "ca-file",
        "client-cert": "client-cert",
        "allow-insecure-http": "allow-insecure-http",
    }
    options: ClassVar[list[Option]] = [
        option(
            "group",
            "g",
            "Group: numeric id or full path; subgroups included [env: GITLAB_RELEASE_GROUP].",
            flag=False,
        ),
        option("group-id", None, "Same as --group (the seed script's name).", flag=False),
        host_option(),
        option(
            "token",
            None,
            "Token with read_api, or @FILE [env: GITLAB_TOKEN; else Poetry's stored "
            "http-basic password of --repository].",
            flag=False,
        ),
        option(
            "exclude",
            "e",
            "Hide projects: comma-separated names, paths or globs; a subgroup hides all below.",
            flag=False,
            multiple=True,
        ),
        option("watch", "w", "Refresh in place until Ctrl-C."),
        option(
            "interval",
            None,
            "Seconds between refreshes in watch mode (at least 2).",
            flag=False,
            default=str(DEFAULT_INTERVAL),
        ),
        option(
            "stages-width",
            None,
            "Characters of each stage name in the table.",
            flag=False,
            default=str(DEFAULT_STAGES_WIDTH),
        ),
        option(
            "ref",
            None,
            "Which pipeline: newest on any ref (default), 'default' for the default branch's "
            "head commit, or a branch or tag name.",
            flag=False,
        ),
        option("include-archived", None, "Also show archived projects."),
        option("failed-only", None, "Show only projects whose pipeline failed."),
        option(
            "format",
            "f",
            "Output: table, json or openmetrics.",
            flag=False,
            default="table",
        ),
        option(
            "logs",
            None,
            "Also show the last N lines of each failed job's log.",
            flag=False,
            default="0",
        ),
        option(
            "output",
            "o",
            "Write to this file (replaced atomically each refresh) instead of standard output.",
            flag=False,
        ),
        option(
            "api",
            None,
            "auto (GraphQL, REST when GraphQL is unavailable), graphql or rest.",
            flag=False,
            default="auto",
        ),
        option(
            "concurrency",
            None,
            "Parallel requests for the REST fallback and logs.",
            flag=False,
            default=str(DEFAULT_CONCURRENCY),
        ),
        option(
            "repository",
            None,
            "Poetry repository whose stored credentials are the last token fallback "
            "[default: gitlab].",
            flag=False,
        ),
        ca_file_option(),
        client_cert_option(),
        insecure_http_option(),
    ]
    help = f"""\
One line per project of a group and its subgroups: path, status of the latest pipeline, ref,
age, duration, one coloured cell per stage in stage order, and the failed jobs. Projects
without pipelines are dimmed; a summary line counts the statuses. Works outside a Poetry project.

<b>Examples</b>
  poetry gitlab-pipelines -g my-group
  poetry gitlab-pipelines -g my-group --watch --exclude 'sandbox/*,legacy-*'
  poetry gitlab-pipelines -g 1234 --ref default --failed-only --logs 20
  poetry gitlab-pipelines -g my-group --format openmetrics -o /var/lib/node_exporter/gitlab.prom

<b>Options in detail</b>
  --group/-g and --group-id are the same option (the seed script used --group-id).
  --exclude matches, case-insensitively, a project's name, last path segment, full path or
    path inside the group; globs (*, ?, [..]) work; repeat it or separate with commas.
  --ref default follows GitLab's /pipelines/latest: the latest pipeline of the default
    branch's head commit, none when that commit has no pipeline (an older one is not shown).
    A branch named "default" is --ref refs/heads/default.
  --format json prints the versioned schema "poetry-gitlab-release/pipelines" (docs/pipelines.md);
    with --watch, one document per line. --format openmetrics prints gauges named like
    gitlab-ci-pipelines-exporter's (gitlab_ci_pipeline_status with labels
    project, ref and status, ...).
  Colours follow GitLab: success green, failed red, running blue, pending/created/waiting
    yellow, canceled/skipped grey, manual purple. None when the output is not a terminal,
    with NO_COLOR set, or with --no-ansi.

<b>Token</b> --token, else GITLAB_TOKEN, else (in CI) CI_JOB_TOKEN, which GitLab does not let
  list groups or pipelines, so it is refused with a clear message; else the password Poetry
  stores for --repository (poetry config http-basic.gitlab ...). It needs the read_api scope.
  Without any token only public groups are visible.

<b>Cost</b> one refresh of N projects costs ceil(N/100) GraphQL requests (+1 the first time
  for a numeric group id, +1 per failed job log with --logs, cached). The REST fallback costs
  about 3 per project the first time and 1 per project after. Watch mode never polls faster
  than 200 requests a minute (a tenth of GitLab.com's limit) and honours Retry-After.
{EXIT_CODES_HELP}"""

    def view_options(self) -> ViewOptions:
        fmt = str(self.option("format") or "table").lower()
        if fmt not in FORMATS:
            raise UsageError(f"invalid --format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
        interval = _int_option(self.option("interval"), "interval", 2, 86400)
        output = self.option("output")
        return ViewOptions(
            format=fmt,
            watch=bool(self.option("watch")),
            interval=float(interval),
            stages_width=_int_option(self.option("stages-width"), "stages-width", 1, 40),
            excludes=self._excludes(),
            failed_only=bool(self.option("failed-only")),
            include_archived=bool(self.option("include-archived")),
            logs=_int_option(self.option("logs"), "logs", 0, 1000),
            api=str(self.option("api") or "auto").lower(),
            concurrency=_int_option(self.option("concurrency"), "concurrency", 1, 32),
            output=Path(str(output)).expanduser() if output else None,
        )

    def _excludes(self) -> tuple[str, ...]:
        from poetry_gitlab_release.pipelines.filters import parse_excludes

        values: Any = self.option("exclude") or []
        return parse_excludes(values if isinstance(values, list) else [values])

    def option_values(self) -> dict[str, object]:
        given = super().option_values()
        group, group_id = self.option("group"), self.option("group-id")
        if group and group_id and str(group).strip("/") != str(group_id).strip("/"):
            raise UsageError("--group and --group-id name different groups; give one")
        return given

    def settings(self) -> Settings:
        settings = self.resolve(use_project=True)
        if settings.credential is None:
            stored = poetry_credential(settings.repository)
            if stored is not None:
                settings = replace(settings, credential=stored)
        return settings

    def run_command(self) -> int:
        from poetry_gitlab_release.pipelines.filters import parse_ref

        view = self.view_options()
        ref = parse_ref(self.option("ref"))
        settings = self.settings()
        group = settings.require_group()

        from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
        from poetry_gitlab_release.pipelines.fetch import (
            FetchOptions,
            PipelineFetcher,
            check_credential,
        )

        fetch_options = FetchOptions(
            group=group,
            ref=ref,
            include_archived=view.include_archived,
            api=view.api,
            concurrency=view.concurrency,
            logs=view.logs,
        )
        check_credential(settings)

        def on_retry(what: str, delay: float) -> None:
            self.line_error(f"{what}; retrying in {delay:.1f}s", verbosity=Verbosity.VERBOSE)

        def notice(message: str) -> None:
            self.line_error(f"<comment>{message}</comment>", verbosity=Verbosity.VERBOSE)

        retry = RetryPolicy(attempts=4, base_delay=0.5, max_delay=60.0)

        def on_rate_limit(message: str, _delay: float) -> None:
            self.line_error(message)  # a wait of up to minutes: said at normal verbosity

        with GitLabClient(
            settings, retry=retry, on_retry=on_retry, on_rate_limit=on_rate_limit
        ) as client:
            fetcher = PipelineFetcher(client, fetch_options, notice=notice)

            def fetch() -> Snapshot:
                from poetry_gitlab_release.pipelines.filters import apply_filters

                return apply_filters(
                    fetcher.fetch(),
                    excludes=view.excludes,
                    failed_only=view.failed_only,
                    include_archived=view.include_archived,
                )

            if view.watch:
                return self._watch(fetch, view)
            snapshot = fetch()
            self._emit(self._render(snapshot, view), view)
            from poetry_gitlab_release.pipelines.model import gate_exit_code

            return gate_exit_code(snapshot)

    # --- output ----------------------------------------------------------------------------

    def _painter(self, view: ViewOptions) -> Any:
        from poetry_gitlab_release.pipelines.table import Painter, supports_unicode

        colour = (
            view.output is None and self.io.output.is_decorated() and not os.environ.get("NO_COLOR")
        )
        encoding = "utf-8" if view.output is not None else getattr(sys.stdout, "encoding", None)
        return Painter(colour=colour, unicode=supports_unicode(encoding))

    def _render(self, snapshot: Snapshot, view: ViewOptions, *, compact: bool = False) -> str:
        if view.format == "json":
            from poetry_gitlab_release.pipelines.json_output import render_json

            text = render_json(snapshot, with_logs=view.logs > 0, indent=None if compact else 2)
            return text + "\n"
        if view.format == "openmetrics":
            from poetry_gitlab_release.pipelines.openmetrics import render_openmetrics

            return render_openmetrics(snapshot)
        from poetry_gitlab_release.pipelines.table import render_table

        lines = render_table(snapshot, self._painter(view), stages_width=view.stages_width)
        return "\n".join(lines) + "\n"

    def _emit(self, text: str, view: ViewOptions) -> None:
        if view.output is not None:
            write_atomically(view.output, text)
        else:
            self.io.write(text, type=Type.RAW)

    def _watch(self, fetch: Any, view: ViewOptions) -> int:
        import shutil
        import time
        from datetime import datetime, timezone

        from poetry_gitlab_release.pipelines.watch import Screen, watch

        def clock() -> datetime:
            return datetime.now(timezone.utc)

        if view.format != "table" or view.output is not None:
            # Machine formats: the file replaced each refresh, or one document per refresh
            # on standard output (JSON lines for json).
            compact = view.format == "json" and view.output is None

            def on_snapshot(snapshot: Snapshot) -> None:
                self._emit(self._render(snapshot, view, compact=compact), view)

            return watch(
                fetch,
                Screen(write=lambda text: None, tty=False),
                painter=self._painter(view),
                stages_width=view.stages_width,
                interval=view.interval,
                sleep=time.sleep,
                clock=clock,
                on_snapshot=on_snapshot,
            )
        no_ansi = self.io.input.has_parameter_option("--no-ansi")
        tty = bool(getattr(sys.stdout, "isatty", lambda: False)()) and not no_ansi
        screen = Screen(write=lambda text: self.io.write(text, type=Type.RAW), tty=tty)
        return watch(
            fetch,
            screen,
            painter=self._painter(view),
            stages_width=view.stages_width,
            interval=view.interval,
            sleep=time.sleep,
            clock=clock,
            height=lambda: shutil.get_terminal_size().lines if tty else None,
        )
