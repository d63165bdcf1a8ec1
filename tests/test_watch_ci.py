"""The nightly-watch CI jobs shipped with the project: valid for their CI system, and doing what the README says.

Validated offline with check-jsonschema's vendored schemas (``vendor.github-workflows``,
``vendor.gitlab-ci``); the network is cut while it runs, so a schema fetched from
the internet would fail the test.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "watch.yml"
GITLAB = ROOT / "ci" / "gitlab-watch.yml"


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def check(schema: str, path: Path) -> tuple[int, str]:
    from check_jsonschema.cli.main_command import main

    res = CliRunner().invoke(main, ["--builtin-schema", schema, str(path)])
    return res.exit_code, res.output


@pytest.mark.parametrize("schema, path", [("vendor.github-workflows", WORKFLOW), ("vendor.gitlab-ci", GITLAB)])
def test_ci_files_validate_against_their_schema(offline, schema, path):
    code, output = check(schema, path)
    assert code == 0, output


def test_the_schema_check_catches_a_broken_workflow(offline, tmp_path):
    broken = tmp_path / "watch.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1))
    code, output = check("vendor.github-workflows", broken)
    assert code != 0 and "runs-on" in output


def _workflow() -> dict:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1)
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True)
    return doc


def test_workflow_runs_nightly_and_on_demand_one_at_a_time():
    wf = _workflow()
    assert wf["on"]["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]  # every day
    assert "workflow_dispatch" in wf["on"]
    assert wf["concurrency"]["cancel-in-progress"] is False and wf["concurrency"]["group"]
    assert wf["permissions"] == {"contents": "read"}


def test_workflow_keeps_state_runs_update_and_publishes():
    steps = _workflow()["jobs"]["watch"]["steps"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    restore, save = uses["actions/cache/restore"], uses["actions/cache/save"]
    kept = set(restore["with"]["path"].split())
    assert kept == {"data", "out"} == set(save["with"]["path"].split())  # tiles, outputs, .berthwatch manifests
    assert restore["with"]["restore-keys"].strip() and save["if"] == "always()"
    assert restore["with"]["key"] == save["with"]["key"]
    update = next(s for s in steps if s.get("id") == "update")
    assert "make update" in update["run"]
    artifact = uses["actions/upload-artifact"]
    assert set(artifact["with"]["path"].split()) == {"out/report", "out/changes"} and artifact["if"] == "always()"
    assert "actions/upload-pages-artifact" in uses


def test_secrets_only_reach_the_update_step_through_its_environment():
    wf = _workflow()
    text = WORKFLOW.read_text()
    secret_lines = [ln.strip() for ln in text.splitlines() if "secrets." in ln and not ln.lstrip().startswith("#")]
    assert secret_lines == ["SH_CLIENT_ID: ${{ secrets.SH_CLIENT_ID }}",
                            "SH_CLIENT_SECRET: ${{ secrets.SH_CLIENT_SECRET }}"]
    for job in wf["jobs"].values():
        assert "secrets." not in str(job.get("env", {}))
        for step in job.get("steps", []):
            assert "secrets." not in step.get("run", "") and "secrets." not in str(step.get("with", {}))
            if "secrets." in str(step.get("env", {})):
                assert step.get("id") == "update"
            assert not re.search(r"echo[^\n]*SH_CLIENT", step.get("run", ""))


def test_gitlab_job_matches():
    job = yaml.safe_load(GITLAB.read_text())["watch"]
    assert any("schedule" in r["if"] for r in job["rules"]) and job["resource_group"]
    assert set(job["cache"]["paths"]) == {"data/", "out/"} and job["cache"]["when"] == "always"
    assert any(line.startswith("make update") for line in job["script"])
    assert set(job["artifacts"]["paths"]) == {"out/report/", "out/changes/"}
    assert job["allow_failure"]["exit_codes"] == [3]
    assert "SH_CLIENT_SECRET" not in str(job.get("variables"))
