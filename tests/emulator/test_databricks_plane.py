"""The emulator's Databricks workspace through the real ``databricks-sdk``: the token must be
the Key Vault's ``databricks-agent-token``; a workspace file runs as a one-time run whose
``spark_env_vars`` read Key Vault-backed secret scopes; states, outputs and errors as the Jobs
API gives them (multi-task output per task, a missing secret, a failing script)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.workspace import ImportFormat

from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME

FOLDER = "/Shared/tests"
SCRIPT = """
import hashlib, os, sys
print("runtime", os.environ["DATABRICKS_RUNTIME_VERSION"])
print("token", hashlib.sha256(os.environ["TOKEN"].encode()).hexdigest())
print("plain", os.environ["PLAIN"])
sys.exit(int(os.environ.get("CODE", "0")))
"""


def _token(emu: Emulator) -> str:
    return str(emu.world.secrets.get(KEY_VAULT_NAME, "databricks-agent-token")["value"])


@pytest.fixture
def workspace(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> WorkspaceClient:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.info["ca_cert"])  # trust the emulator's CA
    config = Config(
        host=emu.info["databricks"], token=_token(emu), auth_type="pat", retry_timeout_seconds=5
    )
    client = WorkspaceClient(config=config)
    client.workspace.mkdirs(FOLDER)
    content = base64.b64encode(SCRIPT.encode()).decode()
    client.workspace.import_(f"{FOLDER}/run.py", content=content, format=ImportFormat.AUTO)
    return client


def _submit(client: WorkspaceClient, env: dict[str, str]) -> Any:
    cluster = compute.ClusterSpec(
        spark_version="15.4.x-scala2.12",
        node_type_id="Standard_D4ds_v5",
        num_workers=0,
        spark_env_vars=env,
    )
    task = jobs.SubmitTask(
        task_key="t",
        new_cluster=cluster,
        spark_python_task=jobs.SparkPythonTask(python_file=f"{FOLDER}/run.py"),
    )
    run_id = client.jobs.submit(run_name="test", tasks=[task]).run_id
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run: Any = client.jobs.get_run(run_id)
        if run.state and run.state.life_cycle_state.value in ("TERMINATED", "INTERNAL_ERROR"):
            return run
        time.sleep(0.05)
    raise AssertionError("the run did not end")


def test_a_one_time_run_reads_secret_scopes_and_gives_its_output(
    emu: Emulator, workspace: WorkspaceClient
) -> None:
    env = {"TOKEN": f"{{{{secrets/{KEY_VAULT_NAME}/databricks-agent-token}}}}", "PLAIN": "x"}
    run = _submit(workspace, env)
    assert (run.state.life_cycle_state.value, run.state.result_state.value) == (
        "TERMINATED",
        "SUCCESS",
    )
    with pytest.raises(Exception, match="multiple tasks is not supported"):
        workspace.jobs.get_run_output(run.run_id)
    output = workspace.jobs.get_run_output(run.tasks[0].run_id)
    assert output.logs is not None
    lines = output.logs.splitlines()
    assert lines[0] == "runtime 15.4.x-scala2.12"
    assert lines[1] == "token " + hashlib.sha256(_token(emu).encode()).hexdigest()
    assert lines[2] == "plain x"
    # The run's record keeps the reference, never the value.
    record: Any = workspace.jobs.get_run(run.run_id)
    assert record.tasks[0].new_cluster.spark_env_vars["TOKEN"] == env["TOKEN"]


def test_a_failing_script_and_a_missing_secret_end_the_run_as_databricks_does(
    workspace: WorkspaceClient,
) -> None:
    failed = _submit(workspace, {"TOKEN": "t", "PLAIN": "y", "CODE": "4"})
    assert failed.state.result_state.value == "FAILED"
    output = workspace.jobs.get_run_output(failed.tasks[0].run_id)
    assert "plain y" in str(output.logs)
    assert output.error == "The Python process exited with code 4"
    missing = _submit(workspace, {"TOKEN": f"{{{{secrets/{KEY_VAULT_NAME}/nope}}}}", "PLAIN": ""})
    assert missing.state.life_cycle_state.value == "INTERNAL_ERROR"
    assert missing.state.state_message == (
        f"Secret does not exist with scope: {KEY_VAULT_NAME} and key: nope"
    )


def test_workspace_files_need_their_folder(workspace: WorkspaceClient) -> None:
    with pytest.raises(NotFound, match=r"parent folder \(/Shared/absent\) does not exist"):
        workspace.workspace.import_("/Shared/absent/x.py", content="", format=ImportFormat.AUTO)
    workspace.workspace.delete(f"{FOLDER}/run.py")
    with pytest.raises(NotFound):
        workspace.workspace.get_status(f"{FOLDER}/run.py")


def test_only_the_key_vault_token_is_accepted(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.info["ca_cert"])
    config = Config(
        host=emu.info["databricks"],
        token="dapi-not-the-token",
        auth_type="pat",
        retry_timeout_seconds=5,
    )
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        WorkspaceClient(config=config).workspace.mkdirs(FOLDER)
    import ssl

    context = ssl.create_default_context(cafile=emu.info["ca_cert"])
    request = urllib.request.Request(f"{emu.info['databricks']}/api/2.1/jobs/runs/get?run_id=1")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=5)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["error_code"] == "UNAUTHENTICATED"
