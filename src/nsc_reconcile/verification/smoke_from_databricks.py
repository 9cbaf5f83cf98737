"""``verify --smoke --from databricks``: the in-network script as a Databricks one-time run
(Jobs API ``runs/submit``) on a single-node job cluster of the declared workspace, through
``databricks-sdk``. Uploads the script as a workspace file, submits, waits (bounded), reads
the task's output (``runs/get-output``) and deletes the file. Credentials are
``{{secrets/<scope>/<secret>}}`` references in the cluster's ``spark_env_vars`` (a Key
Vault-backed scope): no value leaves this process. The workspace token is the Key Vault secret
``smoke.databricks.token_secret``. On the emulator the workspace is the emulator's (loopback).
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from nsc_reconcile.verification.context import Run
from nsc_reconcile.verification.results import Check, Status
from nsc_reconcile.verification.smoke_from import SmokePlan, checks_from_output, script_text

WAIT_GRACE_SECONDS = 60
RETRY_SECONDS = 60  # the SDK's own retries of one call (429, 503, connection errors)
HTTP_TIMEOUT_SECONDS = 30
DONE = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


class RunFailed(Exception):
    """The run gave no results (one line, no secret)."""


def _workspace_host(run: Run, declared: str) -> str:
    """The workspace URL to connect to: the declared one, or on the emulator its workspace
    (loopback only), as a vault URL is mapped there."""
    target = run.clients.target
    if target.arm_url is None:
        return declared.rstrip("/")
    from nsc_reconcile.azure import require_loopback

    emulated = str((getattr(target, "info", None) or {}).get("databricks") or "")
    if not emulated:
        raise RunFailed("the emulator serves no Databricks workspace")
    require_loopback(emulated, "emulator Databricks workspace URL")
    return emulated


def _client(run: Run, host: str, token: str) -> Any:
    """A workspace client with a personal access token; bounded retries (the SDK's default
    retries for 5 minutes); on the emulator it trusts only the emulator's CA, no proxy."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    settings: dict[str, Any] = {
        "host": host,
        "token": token,
        "auth_type": "pat",
        "retry_timeout_seconds": RETRY_SECONDS,
        "http_timeout_seconds": HTTP_TIMEOUT_SECONDS,
    }
    ca = run.clients.target.ca_cert
    if run.clients.target.arm_url is not None and ca:
        settings["http_adapter"] = _emulator_adapter(ca)
    return WorkspaceClient(config=Config(**settings))


def _adapter_class() -> type[Any]:
    from requests.adapters import HTTPAdapter
    from requests.models import PreparedRequest, Response

    class EmulatorAdapter(HTTPAdapter):
        """Trusts the emulator's CA only (not REQUESTS_CA_BUNDLE, not certifi); no proxy."""

        def __init__(self, ca: str) -> None:
            super().__init__()
            self.ca = ca

        def send(
            self,
            request: PreparedRequest,
            stream: bool = False,
            timeout: float | tuple[float | None, float | None] | None = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> Response:
            return super().send(request, stream, timeout, self.ca, cert, {})

    return EmulatorAdapter


def _emulator_adapter(ca: str) -> Any:
    return _adapter_class()(ca)


def _secret_scope(run: Run) -> str | None:
    """The Key Vault-backed scope: declared, else the documents' (``docs``), else the vault's
    name (the convention the generated documents tell users to create)."""
    smoke = run.state.smoke
    if smoke is not None and smoke.databricks is not None and smoke.databricks.secret_scope:
        return smoke.databricks.secret_scope
    docs = getattr(run.state, "docs", None)
    declared = getattr(docs, "databricks_secret_scope", None)
    if declared:
        return str(declared)
    return run.state.secrets.vault if run.state.secrets is not None else None


def run_on_databricks(run: Run, plan: SmokePlan) -> list[Check]:
    """Run ``plan`` on the declared workspace; its checks (every expected one SKIPs naming
    the missing field when no workspace is declared, FAILs saying why when the run fails)."""
    smoke = run.state.smoke
    if smoke is None or smoke.databricks is None:
        return plan.settle(
            Status.SKIP,
            "smoke.databricks.workspace_url is not declared (the "
            "Databricks workspace the one-time run goes to)",
        )
    workspace = smoke.databricks
    checks: list[Check] = []
    scope = _secret_scope(run)
    if plan.credentials and scope is None:
        needing = {c.check_id for c in plan.expected if c.check in ("postgres", "openai")}
        reason = "no Key Vault declared (secrets.vault) for the run's secret scope"
        skipped = [e for e in plan.expected if e.check_id in needing]
        checks += SmokePlan(plan.origin, expected=skipped).settle(Status.SKIP, reason)
        plan.expected = [e for e in plan.expected if e.check_id not in needing]
        plan.credentials = {}
        for prefix in ("NSC_SMOKE_PG_", "NSC_SMOKE_OPENAI_"):
            plan.env = {k: v for k, v in plan.env.items() if not k.startswith(prefix)}
        plan.env["NSC_SMOKE_CHECKS"] = ",".join(plan.checks)
        if not plan.expected:
            return checks
    where = f"Databricks {workspace.workspace_url}"
    submitted: _Submitted | None = None
    try:
        host = _workspace_host(run, workspace.workspace_url)
        client = _client(run, host, run.secret_value(workspace.token_secret))
        submitted = _Submitted(client, workspace.workspace_dir)
        output, run_text = submitted.run(plan, workspace, scope or "")
        where += f", {run_text}"
    except RunFailed as failed:
        return [*checks, *plan.settle(Status.FAIL, f"{where}: {failed}")]
    except Exception as error:
        from nsc_reconcile.retry import describe_error

        return [*checks, *plan.settle(Status.FAIL, f"{where}: {describe_error(error)}")]
    finally:
        if submitted is not None:
            submitted.clean_up()
    return [*checks, *checks_from_output(plan, output, where)]


class _Submitted:
    """One run: its workspace file, submit, wait, output, delete."""

    def __init__(self, client: Any, folder: str) -> None:
        self.client = client
        self.folder = folder.rstrip("/")
        self.label = secrets.token_hex(3)
        self.path = f"{self.folder}/nsc-smoke-{self.label}.py"
        self.uploaded = False

    def run(self, plan: SmokePlan, workspace: Any, scope: str) -> tuple[str, str]:
        from databricks.sdk.service import compute, jobs
        from databricks.sdk.service.workspace import ImportFormat

        self.client.workspace.mkdirs(self.folder)
        content = base64.b64encode(script_text().encode()).decode()
        self.client.workspace.import_(
            path=self.path, content=content, format=ImportFormat.AUTO, overwrite=True
        )
        self.uploaded = True
        env = dict(plan.env)
        env.update(
            {
                variable: f"{{{{secrets/{scope}/{vault_secret}}}}}"
                for variable, vault_secret in plan.credentials.items()
            }
        )
        cluster = compute.ClusterSpec(
            spark_version=workspace.spark_version,
            node_type_id=workspace.node_type_id,
            num_workers=0,
            spark_conf={
                "spark.databricks.cluster.profile": "singleNode",
                "spark.master": "local[*]",
            },
            custom_tags={"ResourceClass": "SingleNode"},
            spark_env_vars=env,
        )
        timeout = workspace.timeout_seconds
        waiter = self.client.jobs.submit(
            run_name=f"nsc-reconcile smoke {self.label}",
            timeout_seconds=timeout,
            tasks=[
                jobs.SubmitTask(
                    task_key="smoke",
                    new_cluster=cluster,
                    spark_python_task=jobs.SparkPythonTask(python_file=self.path),
                )
            ],
        )
        run_id = int(waiter.run_id)
        finished = self._wait(run_id, timeout)
        task = (finished.tasks or [None])[0]
        if task is None or task.run_id is None:
            raise RunFailed(f"run {run_id} has no task run")
        state = finished.state
        result = f"{state.life_cycle_state.value if state and state.life_cycle_state else '?'}"
        if state is not None and state.result_state is not None:
            result += f"/{state.result_state.value}"
        text = f"run {run_id} ({result})"
        output = self.client.jobs.get_run_output(task.run_id)
        logs = str(output.logs or "")
        if not logs.strip():
            message = (state.state_message if state else "") or output.error or "no output"
            raise RunFailed(f"{text} gave no output: {message}")
        return logs, text

    def _wait(self, run_id: int, timeout: int) -> Any:
        deadline = time.monotonic() + timeout + WAIT_GRACE_SECONDS
        delay = 0.3
        while True:
            found = self.client.jobs.get_run(run_id)
            state = found.state.life_cycle_state if found.state else None
            if state is not None and state.value in DONE:
                return found
            if time.monotonic() > deadline:
                self.client.jobs.cancel_run(run_id)
                raise RunFailed(f"run {run_id} not finished after {timeout} s (cancelled)")
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def clean_up(self) -> None:
        if self.uploaded:
            try:
                self.client.workspace.delete(self.path)
            except Exception:  # a leftover file is harmless; the run's result stands
                return
