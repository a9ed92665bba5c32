"""Scenarios: the groups, projects, pipelines and jobs a stand-in serves, with ground truth.

``Scenario.default()`` is the small world of the README demo; ``Scenario.generate()`` builds
3..5,000 projects deterministically from a seed. Everything here is immutable: the stand-in
keeps mutable package state elsewhere, so one scenario can back many servers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from sandbox.gitlab.models import (
    COMPLETED_STATUSES,
    PIPELINE_STATUSES,
    Group,
    Job,
    Pipeline,
    Project,
    composite_status,
)

EPOCH = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)

STAGE_JOBS: dict[str, tuple[str, ...]] = {
    ".pre": ("lint:commit",),
    "build": ("build:wheel", "build:sdist", "build:docs"),
    "test": ("test:unit 3.10", "test:unit 3.12", "test:integration", "lint:ruff", "lint:mypy"),
    "security": ("sast", "dependency_scanning"),
    "sign": ("sign:sigstore",),
    "deploy": ("publish:pypi", "deploy:staging", "deploy:production"),
    ".post": ("notify",),
}
STAGE_SETS: tuple[tuple[str, ...], ...] = (
    ("build", "test", "deploy"),
    ("build", "test", "sign", "deploy"),
    ("test", "deploy"),
    ("build", "test", "security", "deploy"),
    (".pre", "build", "test", "deploy", ".post"),
    ("build", "test"),
)
FAILURE_REASONS = ("script_failure", "runner_system_failure", "stuck_or_timeout_failure")


@dataclass(frozen=True)
class PipelineTruth:
    """What a dashboard must show for one project's latest pipeline."""

    id: int
    iid: int
    status: str
    ref: str
    sha: str
    source: str
    created_at: datetime
    updated_at: datetime
    duration: int | None
    stages: tuple[tuple[str, str], ...]
    failed_jobs: tuple[str, ...]


@dataclass(frozen=True)
class ProjectTruth:
    id: int
    full_path: str
    name: str
    archived: bool
    visibility: str
    latest_pipeline: PipelineTruth | None


class Scenario:
    """Groups, projects, pipelines, plus lookups and ground truth."""

    def __init__(
        self,
        groups: Iterable[Group],
        projects: Iterable[Project],
        pipelines: Iterable[Pipeline],
        *,
        name: str = "custom",
        release_project_path: str | None = None,
    ) -> None:
        self.name = name
        self.groups: dict[int, Group] = {g.id: g for g in groups}
        self.projects: dict[int, Project] = {p.id: p for p in projects}
        self.pipelines: dict[int, Pipeline] = {p.id: p for p in pipelines}
        self.release_project_path = release_project_path
        self._group_by_path = {g.full_path.lower(): g for g in self.groups.values()}
        self._project_by_path = {p.path_with_namespace.lower(): p for p in self.projects.values()}
        self._children: dict[int, list[Group]] = {}
        for group in sorted(self.groups.values(), key=lambda g: g.id):
            if group.parent_id is not None:
                self._children.setdefault(group.parent_id, []).append(group)
        self._projects_in: dict[int, list[Project]] = {}
        for project in sorted(self.projects.values(), key=lambda p: p.id):
            self._projects_in.setdefault(project.namespace_id, []).append(project)
        self._pipelines_of: dict[int, list[Pipeline]] = {}
        for pipeline in sorted(self.pipelines.values(), key=lambda p: p.id, reverse=True):
            self._pipelines_of.setdefault(pipeline.project_id, []).append(pipeline)
        self.jobs: dict[int, tuple[Job, Pipeline]] = {
            job.id: (job, pipeline) for pipeline in self.pipelines.values() for job in pipeline.jobs
        }

        self._stage_statuses: dict[int, list[tuple[str, str]]] = {}

    def stage_statuses(self, pipeline: Pipeline) -> list[tuple[str, str]]:
        """Cached ``pipeline.stage_statuses()`` (scenario data never changes)."""
        cached = self._stage_statuses.get(pipeline.id)
        if cached is None:
            cached = self._stage_statuses[pipeline.id] = pipeline.stage_statuses()
        return cached

    # lookups -------------------------------------------------------------------------------
    def group(self, ref: int | str) -> Group | None:
        if isinstance(ref, int) or ref.isdigit():
            return self.groups.get(int(ref))
        return self._group_by_path.get(ref.lower())

    def project(self, ref: int | str) -> Project | None:
        if isinstance(ref, int) or ref.isdigit():
            return self.projects.get(int(ref))
        return self._project_by_path.get(ref.lower())

    def namespace_of(self, project: Project) -> Group:
        return self.groups[project.namespace_id]

    def subgroups(self, group: Group, *, recursive: bool) -> list[Group]:
        direct = self._children.get(group.id, [])
        if not recursive:
            return list(direct)
        found: list[Group] = []
        for child in direct:
            found.append(child)
            found.extend(self.subgroups(child, recursive=True))
        return found

    def ancestors(self, group: Group) -> list[Group]:
        chain = []
        current: Group | None = group
        while current is not None:
            chain.append(current)
            current = self.groups.get(current.parent_id) if current.parent_id else None
        return chain

    def group_projects(
        self, group: Group, *, include_subgroups: bool, with_shared: bool
    ) -> list[Project]:
        """Projects of a group (optionally of its subgroups, and shared with it), by id."""
        groups = [group, *self.subgroups(group, recursive=True)] if include_subgroups else [group]
        ids = {g.id for g in groups}
        found = [p for g in groups for p in self._projects_in.get(g.id, [])]
        if with_shared:
            found.extend(
                p
                for p in self.projects.values()
                if p.namespace_id not in ids and ids & set(p.shared_with_group_ids)
            )
        return sorted(found, key=lambda p: p.id)

    def project_pipelines(self, project_id: int) -> list[Pipeline]:
        """Newest first."""
        return self._pipelines_of.get(project_id, [])

    def latest_pipeline(self, project_id: int, ref: str | None = None) -> Pipeline | None:
        """``Project#latest_pipeline(ref = default_branch)``: the newest pipeline for the *head
        commit* of ``ref``; None when that commit has none (its pipeline not created yet, or
        skipped). Used by REST ``/pipelines/latest`` and by GraphQL ``pipeline`` without
        arguments."""
        project = self.projects[project_id]
        wanted = ref or project.default_branch
        head = project.head_sha if wanted == project.default_branch else None
        for pipeline in self.project_pipelines(project_id):
            if pipeline.ref == wanted:
                return pipeline if head is None or pipeline.sha == head else None
        return None

    def with_new_head(self, project_path: str) -> Scenario:
        """This scenario after a push to the project's default branch whose pipeline does not
        exist (yet): its default-branch head has no pipeline."""
        found = self.project(project_path)
        if found is None:
            raise KeyError(project_path)
        moved = replace(found, head_sha=_sha(found.id, "pushed", found.default_branch))
        projects = [moved if p.id == found.id else p for p in self.projects.values()]
        return Scenario(
            self.groups.values(),
            projects,
            self.pipelines.values(),
            name=f"{self.name}+push",
            release_project_path=self.release_project_path,
        )

    # ground truth --------------------------------------------------------------------------
    def truth(self, project: int | str) -> ProjectTruth:
        found = self.project(project)
        if found is None:
            raise KeyError(project)
        latest = self.latest_pipeline(found.id)
        return ProjectTruth(
            id=found.id,
            full_path=found.path_with_namespace,
            name=found.name,
            archived=found.archived,
            visibility=found.visibility,
            latest_pipeline=None if latest is None else pipeline_truth(latest),
        )

    def ground_truth(self) -> dict[str, ProjectTruth]:
        """Every project's truth, keyed by full path."""
        return {p.path_with_namespace: self.truth(p.id) for p in self.projects.values()}

    def expected_group_projects(
        self, group_path: str, *, include_subgroups: bool = True, include_archived: bool = False
    ) -> list[ProjectTruth]:
        group = self.group(group_path)
        if group is None:
            raise KeyError(group_path)
        projects = self.group_projects(
            group, include_subgroups=include_subgroups, with_shared=False
        )
        return [self.truth(p.id) for p in projects if include_archived or not p.archived]

    # construction ----------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Scenario:
        """The README demo world (all private, the personal token's user is a member).

        - ``demo-group`` (id 10): ``demo-group/hello-package`` (id 100, the release project,
          pipelines on ``main`` and a tag), ``demo-group/web-app`` (101, latest pipeline failed),
          ``demo-group/docs`` (102, no pipelines), ``demo-group/legacy-tool`` (103, archived)
        - ``demo-group/platform`` (id 11): ``demo-group/platform/api`` (104, running)
        """
        builder = _Builder(random.Random(7))
        root = builder.group("demo-group", None, "private", name="Demo Group")
        platform = builder.group("platform", root, "private", name="Platform")
        hello = builder.project("hello-package", root, "private", name="hello-package")
        web = builder.project("web-app", root, "private")
        builder.project("docs", root, "private")
        legacy = builder.project("legacy-tool", root, "private", archived=True)
        api = builder.project("api", platform, "private")
        builder.pipeline(hello, "success", ("build", "test", "sign", "deploy"), ref="v0.0.9")
        builder.pipeline(hello, "failed", ("build", "test"), ref="main")
        builder.pipeline(hello, "success", ("build", "test", "sign", "deploy"), ref="main")
        builder.pipeline(web, "success", ("build", "test", "deploy"), ref="main")
        builder.pipeline(web, "failed", ("build", "test", "deploy"), ref="main")
        builder.pipeline(legacy, "success", ("build", "test"), ref="main")
        builder.pipeline(api, "manual", ("build", "test", "deploy"), ref="main")
        builder.pipeline(api, "running", ("build", "test", "deploy"), ref="main")
        return builder.scenario("default", release_project_path="demo-group/hello-package")

    @classmethod
    def generate(
        cls,
        projects: int = 50,
        seed: int = 0,
        *,
        root_path: str = "acme",
        max_depth: int = 3,
        archived_ratio: float = 0.1,
        without_pipelines_ratio: float = 0.1,
        max_pipelines: int = 4,
    ) -> Scenario:
        """``projects`` projects (3..5,000) under ``root_path`` and nested subgroups.

        Also a second root group ``<root_path>-partners`` with two projects, one of them shared
        with the root group (so ``with_shared`` matters). Pipeline statuses cycle through all 13
        values, so every status appears once there are at least 13 pipelines.
        """
        if not 3 <= projects <= 5000:
            raise ValueError("projects must be between 3 and 5000")
        rng = random.Random(seed)
        builder = _Builder(rng)
        root = builder.group(root_path, None, "private", name=root_path.title())
        groups = [root]
        target_groups = max(1, projects // 8)
        while len(groups) < target_groups + 1:
            parent = rng.choice(groups)
            depth = len(parent.full_path.split("/"))
            if depth > max_depth:
                continue
            visibility = rng.choice(("private", "internal", "public"))
            if parent.visibility == "private" or (
                parent.visibility == "internal" and visibility == "public"
            ):
                visibility = parent.visibility
            groups.append(builder.group(f"team-{len(groups)}", parent, visibility))
        partners = builder.group(f"{root_path}-partners", None, "private")
        status_cycle = list(PIPELINE_STATUSES)
        rng.shuffle(status_cycle)
        position = 0
        made: list[tuple[Project, int]] = []
        for index in range(projects):
            namespace = groups[0] if index < 2 else rng.choice(groups)
            archived = index >= 2 and rng.random() < archived_ratio
            project = builder.project(
                f"service-{index}", namespace, namespace.visibility, archived=archived
            )
            has_pipelines = index < 2 or rng.random() >= without_pipelines_ratio
            made.append((project, rng.randint(1, max_pipelines) if has_pipelines else 0))
        total = sum(count for _, count in made)
        if total < len(PIPELINE_STATUSES):
            project, count = made[0]
            made[0] = (project, count + len(PIPELINE_STATUSES) - total)
        # Interleave pipeline creation over time so ids grow with created_at across projects.
        for round_index in range(max(count for _, count in made)):
            for project, count in made:
                if round_index < count:
                    stages = rng.choice(STAGE_SETS)
                    status = status_cycle[position % len(status_cycle)]
                    position += 1
                    last = round_index == count - 1
                    ref = project.default_branch if last or rng.random() < 0.6 else "feature/x"
                    if not last and rng.random() < 0.15:
                        ref = f"v1.{round_index}.0"
                    builder.pipeline(project, status, stages, ref=ref)
        shared = builder.project("shared-lib", partners, "private", shared_with=(root.id,))
        builder.project("partner-only", partners, "private")
        builder.pipeline(shared, "success", ("build", "test"), ref="main")
        return builder.scenario(f"generated-{projects}-{seed}")


def pipeline_truth(pipeline: Pipeline) -> PipelineTruth:
    return PipelineTruth(
        id=pipeline.id,
        iid=pipeline.iid,
        status=pipeline.status,
        ref=pipeline.ref,
        sha=pipeline.sha,
        source=pipeline.source,
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
        duration=pipeline.duration,
        stages=tuple(pipeline.stage_statuses()),
        failed_jobs=tuple(pipeline.failed_job_names()),
    )


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class _Builder:
    """Allocates ids and timestamps; builds pipelines whose jobs produce the wanted status."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.groups: list[Group] = []
        self.projects: list[Project] = []
        self.pipelines: list[Pipeline] = []
        self._next_group = 10
        self._next_project = 100
        self._next_pipeline = 5000
        self._next_job = 90000
        self._iids: dict[int, int] = {}
        self._clock = EPOCH - timedelta(days=30)
        self._heads: dict[tuple[int, str], str] = {}

    def scenario(self, name: str, *, release_project_path: str | None = None) -> Scenario:
        return Scenario(
            self.groups,
            self.projects,
            self.pipelines,
            name=name,
            release_project_path=release_project_path,
        )

    def group(
        self, path: str, parent: Group | None, visibility: str, *, name: str | None = None
    ) -> Group:
        full_path = f"{parent.full_path}/{path}" if parent else path
        group = Group(
            id=self._next_group,
            name=name or path.replace("-", " ").title(),
            path=path,
            full_path=full_path,
            parent_id=parent.id if parent else None,
            visibility=visibility,
            description=f"The {path} group",
            created_at=EPOCH - timedelta(days=400 - self._next_group % 300),
        )
        self._next_group += 1
        self.groups.append(group)
        return group

    def project(
        self,
        path: str,
        namespace: Group,
        visibility: str,
        *,
        name: str | None = None,
        archived: bool = False,
        shared_with: tuple[int, ...] = (),
    ) -> Project:
        created = EPOCH - timedelta(days=365, minutes=-self._next_project)
        project = Project(
            id=self._next_project,
            name=name or path,
            path=path,
            namespace_id=namespace.id,
            path_with_namespace=f"{namespace.full_path}/{path}",
            visibility=visibility,
            archived=archived,
            description=f"{path} project",
            created_at=created,
            last_activity_at=created + timedelta(days=300),
            shared_with_group_ids=shared_with,
            topics=("python",) if self.rng.random() < 0.5 else (),
        )
        self._next_project += 1
        self.projects.append(project)
        return project

    def pipeline(self, project: Project, status: str, stages: tuple[str, ...], *, ref: str) -> None:
        rng = self.rng
        self._clock += timedelta(minutes=rng.randint(3, 50), seconds=rng.randint(0, 59))
        created = self._clock
        pipeline_id = self._next_pipeline
        self._next_pipeline += 1
        iid = self._iids.get(project.id, 0) + 1
        self._iids[project.id] = iid
        sha = _sha(project.id, ref, iid)
        before = self._heads.get((project.id, ref), "0" * 40)
        self._heads[(project.id, ref)] = sha
        job_statuses = _job_statuses_for(status, stages, rng)
        jobs: list[Job] = []
        moment = created + timedelta(seconds=rng.randint(1, 20))
        started_at: datetime | None = None
        finished_at: datetime | None = None
        for stage, names in job_statuses:
            stage_end = moment
            for job_name, job_status, allow_failure in names:
                if job_status == "failed" and rng.random() < 0.3:
                    # an earlier attempt that was retried
                    jobs.append(self._job(job_name, stage, "failed", False, True, moment, ref))
                job = self._job(job_name, stage, job_status, allow_failure, False, moment, ref)
                jobs.append(job)
                if job.started_at and (started_at is None or job.started_at < started_at):
                    started_at = job.started_at
                if job.finished_at:
                    stage_end = max(stage_end, job.finished_at)
                    finished_at = max(finished_at or job.finished_at, job.finished_at)
            moment = stage_end + timedelta(seconds=2)
        finished = status in COMPLETED_STATUSES
        duration = None
        if started_at is not None and finished_at is not None and finished:
            duration = int((finished_at - started_at).total_seconds())
        updated = (finished_at if finished and finished_at else moment) + timedelta(
            milliseconds=rng.randint(1, 999)
        )
        pipeline = Pipeline(
            id=pipeline_id,
            iid=iid,
            project_id=project.id,
            ref=ref,
            sha=sha,
            before_sha=before,
            source=rng.choice(("push", "push", "push", "web", "schedule", "merge_request_event"))
            if not ref.startswith("v")
            else "push",
            tag=ref.startswith("v"),
            created_at=created,
            updated_at=updated,
            started_at=started_at,
            finished_at=finished_at if finished else None,
            duration=duration,
            queued_duration=rng.randint(0, 9) if started_at else None,
            stage_names=stages,
            jobs=tuple(jobs),
            name=None,
            status=status,
        )
        computed = composite_status(pipeline.current_jobs())
        if computed != status:
            raise AssertionError(f"pipeline built for {status} computes {computed}")
        self.pipelines.append(pipeline)
        self._clock = max(self._clock, updated)

    def _job(
        self,
        name: str,
        stage: str,
        status: str,
        allow_failure: bool,
        retried: bool,
        moment: datetime,
        ref: str,
    ) -> Job:
        rng = self.rng
        job_id = self._next_job
        self._next_job += 1
        ran = status in ("success", "failed", "canceled", "canceling", "running")
        finished = status in ("success", "failed", "canceled")
        queued = round(rng.uniform(0.2, 8.0), 3) if ran else None
        started = moment + timedelta(seconds=queued or 0) if ran else None
        length = round(rng.uniform(5.0, 240.0), 3)
        ended = started + timedelta(seconds=length) if started and finished else None
        reason = rng.choice(FAILURE_REASONS) if status == "failed" else None
        return Job(
            id=job_id,
            name=name,
            stage=stage,
            status=status,
            allow_failure=allow_failure,
            retried=retried,
            created_at=moment,
            started_at=started,
            finished_at=ended,
            duration=length if ended else None,
            queued_duration=queued,
            failure_reason=reason,
            # A job that failed stuck (no runner took it) has no log: GitLab answers its trace
            # with 200 and an empty body.
            trace=_trace(job_id, name, status, ref)
            if ran and reason != "stuck_or_timeout_failure"
            else "",
        )


def _trace(job_id: int, name: str, status: str, ref: str) -> str:
    lines = [
        "Running with gitlab-runner 17.11.0 (0f67ae4b)",
        "  on sandbox-runner-1 abc123, system ID: s_0123456789ab",
        'Preparing the "docker" executor',
        f"Getting source from Git repository (ref {ref})",
        f'Executing "step_script" stage of the job script ({name})',
        f"$ make {name.split(':')[0].split()[0]}",
    ]
    if status == "success":
        lines += ["ok", "Cleaning up project directory and file based variables", "Job succeeded"]
    elif status == "failed":
        lines += [
            "E   AssertionError: expected 3, got 4",
            "Cleaning up project directory and file based variables",
            "ERROR: Job failed: exit code 1",
        ]
    elif status in ("canceled", "canceling"):
        lines += ["ERROR: Job failed: canceled"]
    return "\n".join(lines) + f"\n[job {job_id}]\n"


JobPlan = list[tuple[str, list[tuple[str, str, bool]]]]


def _job_statuses_for(status: str, stages: tuple[str, ...], rng: random.Random) -> JobPlan:
    """Job (name, status, allow_failure) per stage such that the composite equals ``status``."""
    plan: JobPlan = []
    names = {s: list(STAGE_JOBS[s][: rng.randint(1, len(STAGE_JOBS[s]))]) for s in stages}
    last = len(stages) - 1
    pivot = rng.randint(0, last)  # the stage where the pipeline "is"

    def fill(stage: str, job_status: str) -> list[tuple[str, str, bool]]:
        return [(name, job_status, False) for name in names[stage]]

    for index, stage in enumerate(stages):
        before, at = index < pivot, index == pivot
        if status == "success":
            jobs = fill(stage, "success")
            if stage == "test" and len(jobs) > 1 and rng.random() < 0.3:
                jobs[-1] = (jobs[-1][0], "failed", True)  # allowed to fail: still success
        elif status in ("created", "skipped"):
            jobs = fill(stage, status)
        elif status in ("pending", "preparing"):
            jobs = fill(stage, status if index == 0 else "created")
        elif status == "failed":
            if before:
                jobs = fill(stage, "success")
            elif at:
                jobs = fill(stage, "success")
                jobs[0] = (jobs[0][0], "failed", False)
            else:
                jobs = fill(stage, "skipped")
        elif status == "canceled":
            jobs = fill(stage, "success" if before else "canceled")
        elif status == "canceling":
            if before:
                jobs = fill(stage, "success")
            elif at:
                jobs = fill(stage, "canceling")
            else:
                jobs = fill(stage, "canceled")
        elif status == "running":
            if before:
                jobs = fill(stage, "success")
            elif at:
                jobs = fill(stage, "success")
                jobs[0] = (jobs[0][0], "running", False)
            else:
                jobs = fill(stage, "created")
        elif status in ("waiting_for_resource", "waiting_for_callback", "manual", "scheduled"):
            if before:
                jobs = fill(stage, "success")
            elif at:
                jobs = fill(stage, status)
            else:
                jobs = fill(stage, "created" if status != "manual" else "skipped")
        else:
            raise ValueError(f"unknown pipeline status {status!r}")
        plan.append((stage, jobs))
    return plan
