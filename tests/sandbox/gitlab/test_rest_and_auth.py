"""REST fidelity: the auth matrix, generic registry, packages API, pagination, simple index."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import httpx
import pytest

from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.gitlab.http import Request
from sandbox.gitlab.pagination import paginate

HELLO = 100
GENERIC = "/projects/100/packages/generic/hello-package/0.1.0"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _pypi_upload(
    standin: GitLabStandIn, headers: dict[str, str], content: bytes = b"wheel-bytes", **fields: str
) -> httpx.Response:
    data = {"name": "Hello.Package", "version": "0.1.0", "requires_python": ">=3.9", **fields}
    return httpx.post(
        f"{standin.api_url}/projects/{HELLO}/packages/pypi",
        data=data,
        files={"content": ("hello_package-0.1.0-py3-none-any.whl", content)},
        headers=headers,
    )


def test_pypi_rules(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    job = g.job_token(HELLO)
    assert _pypi_upload(g, {"JOB-TOKEN": job}).status_code == 401  # header refused on PyPI
    assert _pypi_upload(g, _basic("someone", job)).status_code == 401
    assert _pypi_upload(g, _basic("x", g.tokens.read_api)).json()["error"] == "insufficient_scope"
    # GitLab does not compare sha256_digest with the file: it stores the client's digest.
    wrong = "ab" * 32
    unchecked = _pypi_upload(g, _basic("x", g.tokens.personal), sha256_digest=wrong)
    assert unchecked.status_code == 201
    assert [f.sha256 for f in g.stored_files()] == [wrong]
    bad = _pypi_upload(g, _basic("x", g.tokens.personal), sha256_digest="not-hex")
    assert bad.json() == {"error": "sha256_digest is invalid"}
    g.clear_packages()
    missing = httpx.post(
        f"{g.api_url}/projects/{HELLO}/packages/pypi",
        data={"x": "1"},
        files={"y": ("f", b"")},
        headers=_basic("x", g.tokens.personal),
    )
    assert missing.json() == {"error": "content is missing, name is missing, version is missing"}
    assert g.stored_files() == []
    digest = hashlib.sha256(b"wheel-bytes").hexdigest()
    ok = _pypi_upload(g, _basic("gitlab-ci-token", job), sha256_digest=digest)
    assert (ok.status_code, ok.json()) == (201, {"message": "201 Created"})
    again = _pypi_upload(g, _basic(g.tokens.deploy_username, g.tokens.deploy_token))
    assert again.status_code == 400
    assert again.json() == {
        "message": "400 Bad request - Validation failed: File name has already been taken"
    }
    page = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages/pypi/simple/hello_PACKAGE/",
        headers=_basic("any", g.tokens.personal),
    )
    assert page.status_code == 200
    href = f"{g.api_url}/projects/{HELLO}/packages/pypi/files/{digest}/hello_package-0.1.0-py3-none-any.whl#sha256={digest}"
    assert f'<a href="{href}" data-requires-python="&gt;=3.9">' in page.text
    assert "<title>Links for Hello.Package</title>" in page.text
    group_page = httpx.get(
        f"{g.api_url}/groups/demo-group/-/packages/pypi/simple/hello-package",
        headers=_basic("any", g.tokens.personal),
    )
    assert f"/api/v4/groups/10/-/packages/pypi/files/{digest}/" in group_page.text
    index = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages/pypi/simple", headers=_basic("a", g.tokens.personal)
    )
    assert f'href="{g.api_url}/projects/{HELLO}/packages/pypi/simple/hello-package"' in index.text
    file_url = re.search(r'href="([^"#]+)#', page.text)
    assert file_url is not None
    assert (
        httpx.get(file_url.group(1), headers=_basic("a", g.tokens.personal)).content
        == b"wheel-bytes"
    )
    unknown = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages/pypi/simple/nope",
        headers=_basic("a", g.tokens.personal),
    )
    assert unknown.json() == {"message": "404 Package Not Found"}


def test_generic_rules(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    pat = {"PRIVATE-TOKEN": g.tokens.personal}
    assert (
        httpx.put(
            f"{g.api_url}{GENERIC}/a.sig", content=b"1", headers={"JOB-TOKEN": g.job_token(HELLO)}
        ).status_code
        == 201
    )
    assert (
        httpx.put(
            f"{g.api_url}{GENERIC}/a.sig",
            content=b"2",
            headers=_basic("gitlab-ci-token", g.job_token(HELLO)),
        ).status_code
        == 201
    )
    got = httpx.get(f"{g.api_url}{GENERIC}/a.sig", headers=pat)
    assert got.content == b"2"  # duplicates allowed by default: the newest wins
    assert got.headers["x-checksum-sha256"] == hashlib.sha256(b"2").hexdigest()
    selected = httpx.put(
        f"{g.api_url}{GENERIC}/b.sigstore.json?select=package_file", content=b"{}", headers=pat
    )
    assert selected.status_code == 200
    assert selected.json()["file_sha256"] == hashlib.sha256(b"{}").hexdigest()
    g.set_generic_duplicates_allowed(False)
    # Duplicates off refuses the same file *name* only; another file joins the package.
    assert httpx.put(f"{g.api_url}{GENERIC}/c.sig", content=b"3", headers=pat).status_code == 201
    denied = httpx.put(f"{g.api_url}{GENERIC}/a.sig", content=b"3", headers=pat)
    assert denied.json() == {"message": "400 Bad request - Duplicate package is not allowed"}
    bad_name = httpx.put(
        f"{g.api_url}/projects/100/packages/generic/bad name/1.0/x", content=b"", headers=pat
    )
    assert bad_name.json() == {"error": "package_name is invalid"}
    bad_version = httpx.put(
        f"{g.api_url}/projects/100/packages/generic/p/1..0/x", content=b"", headers=pat
    )
    assert bad_version.json() == {"error": "package_version is invalid"}
    other = g.job_token(101)
    assert (
        httpx.put(
            f"{g.api_url}{GENERIC}/d.sig", content=b"", headers={"JOB-TOKEN": other}
        ).status_code
        == 404
    )
    missing = httpx.get(f"{g.api_url}/projects/100/packages/generic/none/1.0/x", headers=pat)
    assert missing.json() == {"message": "404 Package Not Found"}
    files = [(f.file_name, f.content) for f in g.stored_files(HELLO)]
    assert files == [("a.sig", b"1"), ("a.sig", b"2"), ("b.sigstore.json", b"{}"), ("c.sig", b"3")]


def test_packages_api_and_job_token_scope(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    job = {"JOB-TOKEN": g.job_token(HELLO)}
    httpx.put(f"{g.api_url}{GENERIC}/a.sig", content=b"abc", headers=job)
    packages = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages?package_type=generic&package_name=hello",
        headers=job,
    )
    assert [(p["name"], p["version"]) for p in packages.json()] == [("hello-package", "0.1.0")]
    package_id = packages.json()[0]["id"]
    files = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages/{package_id}/package_files", headers=job
    ).json()
    assert files[0]["file_sha256"] == hashlib.sha256(b"abc").hexdigest()
    # A job token reaches only its own project's packages and nothing of groups or pipelines.
    assert httpx.get(f"{g.api_url}/projects/101/packages", headers=job).json() == {
        "message": "404 Project Not Found"
    }
    assert httpx.get(f"{g.api_url}/groups/10/projects", headers=job).json() == {
        "message": "404 Group Not Found"
    }
    assert httpx.get(f"{g.api_url}/projects/{HELLO}/pipelines", headers=job).status_code == 404
    assert (
        httpx.get(f"{g.api_url}/projects/{HELLO}/pipelines/latest", headers=job).status_code == 404
    )
    bearer = {"Authorization": f"Bearer {g.job_token(HELLO)}"}
    assert httpx.get(f"{g.api_url}/projects/{HELLO}/pipelines", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [
        (
            "expired",
            401,
            {
                "error": "invalid_token",
                "error_description": "Token is expired. You can either do re-authorization or token refresh.",
            },
        ),
        ("no_scope", 403, None),
        ("outsider", 404, {"message": "404 Project Not Found"}),
        ("bogus", 401, {"message": "401 Unauthorized"}),
        ("read_api", 200, None),
    ],
)
def test_auth_matrix(
    gitlab_standin_shared: GitLabStandIn, token: str, status: int, body: object
) -> None:
    g = gitlab_standin_shared
    value = "glpat-bogus" if token == "bogus" else getattr(g.tokens, token)
    for headers in ({"PRIVATE-TOKEN": value}, {"Authorization": f"Bearer {value}"}):
        response = httpx.get(f"{g.api_url}/projects/{HELLO}/pipelines", headers=headers)
        assert response.status_code == status
        if body is not None:
            assert response.json() == body
    anonymous = httpx.get(f"{g.api_url}/projects/{HELLO}/pipelines")
    assert anonymous.json() == {"message": "404 Project Not Found"}
    assert (
        httpx.get(f"{g.api_url}/projects/demo-group/hello-package").status_code == 404
    )  # unencoded /


def test_pipelines_rest(gitlab_standin_shared: GitLabStandIn) -> None:
    g = gitlab_standin_shared
    pat = {"PRIVATE-TOKEN": g.tokens.personal}
    api = g.api_url + "/projects/demo-group%2Fhello-package"
    listed = httpx.get(f"{api}/pipelines", headers=pat).json()
    assert [p["id"] for p in listed] == sorted((p["id"] for p in listed), reverse=True)
    assert "duration" not in listed[0]
    assert [p["ref"] for p in httpx.get(f"{api}/pipelines?scope=tags", headers=pat).json()] == [
        "v0.0.9"
    ]
    assert len(httpx.get(f"{api}/pipelines?status=failed", headers=pat).json()) == 1
    latest = httpx.get(f"{api}/pipelines/latest", headers=pat).json()
    truth = g.scenario.truth(HELLO).latest_pipeline
    assert truth is not None
    assert (latest["id"], latest["duration"], latest["status"]) == (
        truth.id,
        truth.duration,
        truth.status,
    )
    jobs = httpx.get(
        f"{api}/pipelines/{latest['id']}/jobs?scope[]=success&scope[]=failed", headers=pat
    ).json()
    assert [j["id"] for j in jobs] == sorted((j["id"] for j in jobs), reverse=True)
    assert {j["status"] for j in jobs} <= {"success", "failed"}
    trace = httpx.get(f"{api}/jobs/{jobs[0]['id']}/trace", headers=pat)
    assert trace.headers["content-type"].startswith("text/plain") and "Job succeeded" in trace.text
    assert httpx.get(f"{api}/pipelines/1", headers=pat).json() == {"message": "404 Not found"}
    assert httpx.get(f"{g.api_url}/projects/102/pipelines/latest", headers=pat).json() == {
        "message": "403 Forbidden"
    }


def test_group_projects_filters_and_headers(gitlab_standin_large: GitLabStandIn) -> None:
    g = gitlab_standin_large
    pat = {"PRIVATE-TOKEN": g.tokens.read_api}
    url = f"{g.api_url}/groups/acme/projects"
    direct = httpx.get(url, headers=pat, params={"per_page": 100}).json()
    assert all(p["namespace"]["full_path"] in ("acme", "acme-partners") for p in direct)
    assert any(p["namespace"]["full_path"] == "acme-partners" for p in direct)  # with_shared
    first = httpx.get(
        url,
        headers=pat,
        params={
            "include_subgroups": "true",
            "with_shared": "false",
            "archived": "false",
            "simple": "true",
            "per_page": 100,
        },
    )
    expected = g.scenario.expected_group_projects("acme", include_archived=False)
    assert first.headers["x-total"] == str(len(expected))
    assert first.headers["x-next-page"] == "2" and first.headers["x-prev-page"] == ""
    assert 'rel="next"' in first.headers["link"] and "archived" not in first.json()[0]
    numeric = httpx.get(f"{g.api_url}/groups/10/projects", headers=pat, params={"per_page": 5})
    assert numeric.headers["x-per-page"] == "5"


def test_pagination_hides_totals_above_10000() -> None:
    request = Request("GET", "/api/v4/x", {"page": ["2"], "per_page": ["500"]}, {}, b"", "http://h")
    page, headers = paginate(request, list(range(10_001)))
    names = dict(headers)
    assert len(page) == 100 and page[0] == 100
    assert "x-total" not in names and 'rel="last"' not in names["Link"]
    assert names["x-next-page"] == "3"


def test_scenario_generation_is_deterministic_and_complete() -> None:
    small = Scenario.generate(projects=3, seed=5)
    assert len({p.status for p in small.pipelines.values()}) == 13
    again = Scenario.generate(projects=3, seed=5)
    assert small.ground_truth() == again.ground_truth()
    large = Scenario.generate(projects=300, seed=9)
    truths = large.ground_truth().values()
    assert any(t.archived for t in truths)
    assert any(t.latest_pipeline is None for t in truths)
    assert max(len(p.path_with_namespace.split("/")) for p in large.projects.values()) >= 4
    with pytest.raises(ValueError):
        Scenario.generate(projects=2)


def test_helpers_factory(make_gitlab_standin: Callable[..., GitLabStandIn]) -> None:
    g = make_gitlab_standin(generic_duplicates_allowed=False, graphql_enabled=False)
    assert httpx.post(g.graphql_url, json={"query": "{ currentUser { id } }"}).status_code == 404
    variables = g.ci_variables("demo-group/hello-package", tag="v1.0.0")
    assert variables["CI_PROJECT_ID"] == "100" and variables["CI_API_V4_URL"] == g.api_url


def test_group_packages_list_every_projects_packages_with_its_owner(
    gitlab_standin: GitLabStandIn,
) -> None:
    g = gitlab_standin
    personal = {"PRIVATE-TOKEN": g.tokens.personal}
    httpx.put(f"{g.api_url}{GENERIC}/a.sig", content=b"abc", headers=personal)
    listed = httpx.get(
        f"{g.api_url}/groups/demo-group/packages",
        params={"package_type": "generic", "package_name": "hello"},
        headers=personal,
    )
    assert listed.status_code == 200
    assert [(p["name"], p["project_id"], p["project_path"]) for p in listed.json()] == [
        ("hello-package", HELLO, "demo-group/hello-package")
    ]
    assert listed.headers["x-total"] == "1"
    only_pypi = httpx.get(
        f"{g.api_url}/groups/demo-group/packages", params={"package_type": "pypi"}, headers=personal
    )
    assert only_pypi.json() == []
    bad = httpx.get(
        f"{g.api_url}/groups/demo-group/packages",
        params={"package_type": "wheel"},
        headers=personal,
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "package_type does not have a valid value"}
    # Like every group route, refused to a job token; invisible to an outsider.
    job = {"JOB-TOKEN": g.job_token(HELLO)}
    assert httpx.get(f"{g.api_url}/groups/demo-group/packages", headers=job).status_code == 404
    outsider = {"PRIVATE-TOKEN": g.tokens.outsider}
    assert httpx.get(f"{g.api_url}/groups/demo-group/packages", headers=outsider).json() == {
        "message": "404 Group Not Found"
    }


def test_package_entity_owner_fields_and_group_ordering(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    personal = {"PRIVATE-TOKEN": g.tokens.personal}
    httpx.put(f"{g.api_url}{GENERIC}/a.sig", content=b"abc", headers=personal)
    # lib/api/entities/package.rb: project_id and project_path on the group route only.
    (project_entry,) = httpx.get(f"{g.api_url}/projects/{HELLO}/packages", headers=personal).json()
    assert "project_id" not in project_entry and "project_path" not in project_entry
    by_path = httpx.get(
        f"{g.api_url}/groups/demo-group/packages",
        params={"order_by": "project_path"},
        headers=personal,
    )
    assert by_path.status_code == 200 and by_path.json()[0]["project_id"] == HELLO
    on_project = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages",
        params={"order_by": "project_path"},
        headers=personal,
    )
    assert on_project.json() == {"error": "order_by does not have a valid value"}
    rpm = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages", params={"package_type": "rpm"}, headers=personal
    )
    assert (rpm.status_code, rpm.json()) == (200, [])


def test_generic_upload_status_changes_the_package_and_hidden_is_still_served(
    gitlab_standin: GitLabStandIn,
) -> None:
    g = gitlab_standin
    personal = {"PRIVATE-TOKEN": g.tokens.personal}
    assert httpx.put(f"{g.api_url}{GENERIC}/a.sig", content=b"a", headers=personal).is_success
    hidden = httpx.put(
        f"{g.api_url}{GENERIC}/b.sig", params={"status": "hidden"}, content=b"b", headers=personal
    )
    assert hidden.status_code == 201
    # CreatePackageFileService: the status given updates the existing package.
    listed = httpx.get(f"{g.api_url}/projects/{HELLO}/packages", headers=personal).json()
    assert listed == []  # hidden is not displayable
    shown = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages", params={"status": "hidden"}, headers=personal
    ).json()
    assert [p["status"] for p in shown] == ["hidden"]
    # Generic::PackageFinder: installable (default, hidden, deprecated) packages are served.
    got = httpx.get(f"{g.api_url}{GENERIC}/a.sig", headers=personal)
    assert (got.status_code, got.content) == (200, b"a")
