"""A minimal Azure Databricks workspace REST API (HTTPS) for one-time runs of a Python file, as
``databricks-sdk`` calls it: workspace files (``/api/2.0/workspace/mkdirs|import|get-status|
delete``), Jobs API 2.1 and 2.2 ``runs/submit``, ``runs/get``, ``runs/get-output``,
``runs/cancel``, and the SDK's ``/.well-known/databricks-config`` probe.

Authentication: ``Authorization: Bearer <token>`` must equal the current value of the Key Vault
secret ``databricks-agent-token`` of a vault of the world (401 without a token, 403 with
another). A run's tasks run one after the other, each a ``spark_python_task`` (a workspace
file) on a ``new_cluster``: the file runs as a local Python subprocess in the sandbox with the
Databricks subnets' network view (``sandbox.py``) and the cluster's ``spark_env_vars``;
``{{secrets/<scope>/<key>}}`` in them reads secret ``<key>`` of the Key Vault named ``<scope>``
(every vault of the world is a Key Vault-backed scope of its own name). Errors are Databricks'
``{"error_code", "message"}``. Reads the world's vaults; writes nothing of it.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsc_reconcile.emulator.protocol import Request, Response
from nsc_reconcile.emulator.sandbox import Handle, Outcome, Sandbox
from nsc_reconcile.emulator.secrets import SecretError

__all__ = ["TOKEN_SECRET", "WORKSPACE_ID", "DatabricksPlane"]

Obj = dict[str, Any]
TOKEN_SECRET = "databricks-agent-token"
WORKSPACE_ID = "1234567890123456"
VAULT_TYPE = "Microsoft.KeyVault/vaults"
DEFAULT_TIMEOUT = 3600.0  # a run without timeout_seconds: the emulator's own limit
_SECRET_REF = re.compile(r"\{\{secrets/([^/}]+)/([^/}]+)\}\}")
_ROOTS = ("/", "/Shared", "/Users", "/Repos")


class DatabricksError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return Response(self.status, {"error_code": self.code, "message": self.message})


def _invalid(message: str) -> DatabricksError:
    return DatabricksError(400, "INVALID_PARAMETER_VALUE", message)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _norm(path: str) -> str:
    """A workspace path without the ``/Workspace`` prefix, no trailing slash."""
    path = "/" + str(path).strip().strip("/")
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    return path


class DatabricksPlane:
    """One workspace (see the module docstring). ``url`` gives its base URL once served."""

    def __init__(self, world: Any, sandbox: Sandbox, url: Callable[[], str]) -> None:
        self.world = world
        self.sandbox = sandbox
        self.url = url
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        """No runs, no workspace files (the emulator's reset)."""
        with self._lock:
            for handle in getattr(self, "_handles", {}).values():
                handle.kill()
            self._handles: dict[int, Handle] = {}  # task run id -> its run
            self._runs: dict[int, Obj] = {}  # run id -> run
            self._task_of: dict[int, int] = {}  # task run id -> run id
            self._output: dict[int, bytes] = {}  # task run id -> output
            self._errors: dict[int, str] = {}  # task run id -> error text
            self._files: dict[str, bytes] = {}
            self._dirs: set[str] = set(_ROOTS)

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            if request.method == "GET" and request.path == "/.well-known/databricks-config":
                return Response(200, self._host_metadata())
            self._authenticate(request)
            with self._lock:
                return self._route(request)
        except DatabricksError as error:
            return error.response()

    def _host_metadata(self) -> Obj:
        return {
            "oidc_endpoint": f"{self.url()}/oidc",
            "workspace_id": WORKSPACE_ID,
            "cloud": "AZURE",
        }

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise DatabricksError(
                401,
                "UNAUTHENTICATED",
                "Credential was not sent or was of an unsupported type for this API.",
            )
        if header[7:].strip() not in self._tokens():
            raise DatabricksError(403, "PERMISSION_DENIED", "Invalid access token.")

    def _tokens(self) -> set[str]:
        tokens = set()
        for vault in self.world.list_by_type(VAULT_TYPE):
            try:
                tokens.add(str(self.world.secrets.get(str(vault["name"]), TOKEN_SECRET)["value"]))
            except SecretError:
                continue
        return tokens

    def _route(self, request: Request) -> Response:
        method, path = request.method, request.path.rstrip("/")
        if path.startswith("/api/2.2/jobs/"):  # Jobs API 2.2 = 2.1 for what is served here
            path = "/api/2.1/jobs/" + path[len("/api/2.2/jobs/") :]
        body = self._body(request) if method == "POST" else {}
        routes: dict[tuple[str, str], Callable[[Request, Obj], Obj]] = {
            ("POST", "/api/2.0/workspace/mkdirs"): self._mkdirs,
            ("POST", "/api/2.0/workspace/import"): self._import,
            ("GET", "/api/2.0/workspace/get-status"): self._get_status,
            ("POST", "/api/2.0/workspace/delete"): self._delete,
            ("POST", "/api/2.1/jobs/runs/submit"): self._submit,
            ("GET", "/api/2.1/jobs/runs/get"): self._get_run,
            ("GET", "/api/2.1/jobs/runs/get-output"): self._get_output,
            ("POST", "/api/2.1/jobs/runs/cancel"): self._cancel,
        }
        action = routes.get((method, path))
        if action is None:
            raise DatabricksError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        return Response(200, action(request, body))

    @staticmethod
    def _body(request: Request) -> Obj:
        try:
            body = request.json()
        except ValueError as error:
            raise DatabricksError(400, "MALFORMED_REQUEST", f"Invalid JSON: {error}") from None
        if not isinstance(body, dict):
            raise DatabricksError(400, "MALFORMED_REQUEST", "the request body must be an object")
        return body

    # -- workspace files ---------------------------------------------------------------------
    def _mkdirs(self, request: Request, body: Obj) -> Obj:
        path = _norm(body.get("path") or "")
        if path in self._files:
            raise DatabricksError(
                400, "RESOURCE_ALREADY_EXISTS", f"{path} already exists as a file"
            )
        parts = path.strip("/").split("/")
        for index in range(1, len(parts) + 1):
            self._dirs.add("/" + "/".join(parts[:index]))
        return {}

    def _import(self, request: Request, body: Obj) -> Obj:
        path = _norm(body.get("path") or "")
        parent = path.rsplit("/", 1)[0] or "/"
        if parent not in self._dirs:
            raise DatabricksError(
                404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder ({parent}) does not exist."
            )
        if path in self._dirs or (path in self._files and not body.get("overwrite")):
            raise DatabricksError(400, "RESOURCE_ALREADY_EXISTS", f"{path} already exists.")
        try:
            content = base64.b64decode(str(body.get("content") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid("content is not valid base64") from None
        self._files[path] = content
        return {}

    def _get_status(self, request: Request, body: Obj) -> Obj:
        path = _norm(request.query.get("path", ""))
        if path in self._files:
            return {"object_type": "FILE", "path": path, "size": len(self._files[path])}
        if path in self._dirs:
            return {"object_type": "DIRECTORY", "path": path}
        raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")

    def _delete(self, request: Request, body: Obj) -> Obj:
        path = _norm(body.get("path") or "")
        if path in self._files:
            del self._files[path]
            return {}
        if path not in self._dirs or path in _ROOTS:
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        inside = [p for p in [*self._files, *self._dirs] if p.startswith(path + "/")]
        if inside and not body.get("recursive"):
            raise DatabricksError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty.")
        for item in inside:
            self._files.pop(item, None)
            self._dirs.discard(item)
        self._dirs.discard(path)
        return {}

    # -- runs --------------------------------------------------------------------------------
    def _submit(self, request: Request, body: Obj) -> Obj:
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise _invalid("At least one task is required.")
        for task in tasks:
            if not isinstance(task, dict) or not task.get("task_key"):
                raise _invalid("Each task needs a task_key.")
            python = task.get("spark_python_task")
            if not isinstance(python, dict) or not python.get("python_file"):
                raise _invalid("the emulator runs spark_python_task tasks only")
            if not isinstance(task.get("new_cluster"), dict):
                raise _invalid("the emulator runs tasks on a new_cluster only")
            if not str(python["python_file"]).startswith("/"):
                raise _invalid("the emulator runs workspace files only (an absolute path)")
        run_id = next(self._ids)
        started = _now_ms()
        run: Obj = {
            "job_id": 1000 + run_id,
            "run_id": run_id,
            "number_in_job": run_id,
            "run_name": str(body.get("run_name") or "Untitled"),
            "creator_user_name": "nsc-agent",
            "run_type": "SUBMIT_RUN",
            "format": "MULTI_TASK",
            "start_time": started,
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "end_time": 0,
            "run_page_url": f"{self.url()}/?o={WORKSPACE_ID}#job/{1000 + run_id}/run/{run_id}",
            "tasks": [],
        }
        for task in tasks:
            task_run_id = next(self._ids)
            self._task_of[task_run_id] = run_id
            run["tasks"].append(
                {
                    "run_id": task_run_id,
                    "task_key": task["task_key"],
                    "spark_python_task": copy.deepcopy(task["spark_python_task"]),
                    "new_cluster": copy.deepcopy(task["new_cluster"]),
                    "attempt_number": 0,
                    "start_time": started,
                    "end_time": 0,
                    "timeout_seconds": task.get("timeout_seconds"),
                }
            )
        self._runs[run_id] = run
        _set_state(run, "PENDING", "Waiting for cluster")
        for task in run["tasks"]:
            _set_state(task, "PENDING", "Waiting for cluster")
        timeout = float(body.get("timeout_seconds") or 0) or DEFAULT_TIMEOUT
        self._next_task(run_id, time.monotonic() + timeout)
        return {"run_id": run_id}

    def _next_task(self, run_id: int, deadline: float) -> None:
        """Start the run's first task that has not run; end the run when none is left."""
        run = self._runs.get(run_id)
        if run is None:
            return
        task = next((t for t in run["tasks"] if t["state"]["life_cycle_state"] == "PENDING"), None)
        if task is None:
            self._finish(run)
            return
        cluster = task["new_cluster"]
        env: dict[str, str] = {}
        plain: list[str] = []
        for key, value in (cluster.get("spark_env_vars") or {}).items():
            try:
                env[str(key)] = _SECRET_REF.sub(self._secret, str(value))
            except DatabricksError as error:
                self._task_ended(
                    run_id,
                    task["run_id"],
                    Outcome(None, b"", False, 0, 0),
                    error.message,
                    internal=True,
                )
                return
            if not _SECRET_REF.search(str(value)):
                plain.append(str(value))
        env["DATABRICKS_RUNTIME_VERSION"] = str(cluster.get("spark_version") or "")
        file_path = _norm(task["spark_python_task"]["python_file"])
        content = self._files.get(file_path)
        if content is None:
            message = f"Workspace file {file_path} does not exist"
            self._task_ended(run_id, task["run_id"], Outcome(None, b"", False, 0, 0), message)
            return
        parameters = [str(p) for p in task["spark_python_task"].get("parameters") or []]
        local = "task/" + file_path.rsplit("/", 1)[-1]
        task_timeout = float(task.get("timeout_seconds") or 0) or DEFAULT_TIMEOUT
        remaining = max(0.1, min(deadline - time.monotonic(), task_timeout))
        task_run_id = task["run_id"]

        def argv(workdir: Path) -> list[str]:
            return [sys.executable, str(workdir / local), *parameters]

        def on_start() -> None:
            with self._lock:
                _set_state(task, "RUNNING", "In run")
                _set_state(run, "RUNNING", "In run")

        def on_exit(outcome: Outcome) -> None:
            with self._lock:
                self._handles.pop(task_run_id, None)
                if self._runs.get(run_id) is not run:
                    return
                self._task_ended(run_id, task_run_id, outcome, "")
                if run["state"]["life_cycle_state"] != "TERMINATED":
                    self._next_task(run_id, deadline)

        self._handles[task_run_id] = self.sandbox.launch(
            argv=argv,
            env=env,
            plain_values=[*plain, *parameters],
            files={local: content},
            timeout=remaining,
            on_start=on_start,
            on_exit=on_exit,
        )

    def _secret(self, match: re.Match[str]) -> str:
        scope, key = match[1], match[2]
        try:
            return str(self.world.secrets.get(scope, key)["value"])
        except SecretError:
            raise DatabricksError(
                400,
                "RESOURCE_DOES_NOT_EXIST",
                f"Secret does not exist with scope: {scope} and key: {key}",
            ) from None

    def _task_ended(
        self, run_id: int, task_run_id: int, outcome: Outcome, message: str, internal: bool = False
    ) -> None:
        run = self._runs[run_id]
        task = next(t for t in run["tasks"] if t["run_id"] == task_run_id)
        self._output[task_run_id] = outcome.output
        task["end_time"] = _now_ms()
        if internal:
            _set_state(task, "INTERNAL_ERROR", message, "FAILED")
        elif outcome.timed_out:
            _set_state(task, "TERMINATED", "Task timed out", "TIMEDOUT")
        elif outcome.killed:
            _set_state(task, "TERMINATED", "Run cancelled", "CANCELED")
        elif outcome.exit_code == 0:
            _set_state(task, "TERMINATED", "", "SUCCESS")
        else:
            text = message or f"The Python process exited with code {outcome.exit_code}"
            self._errors[task_run_id] = text
            _set_state(task, "TERMINATED", text, "FAILED")
        if task["state"].get("result_state") != "SUCCESS":
            for other in run["tasks"]:
                if other["state"]["life_cycle_state"] == "PENDING":
                    _set_state(other, "SKIPPED", "Upstream task failed", "UPSTREAM_FAILED")
            self._finish(run)

    def _finish(self, run: Obj) -> None:
        results = [t["state"] for t in run["tasks"]]
        failed = next((s for s in results if s.get("result_state") not in ("SUCCESS", None)), None)
        run["end_time"] = _now_ms()
        run["execution_duration"] = run["end_time"] - run["start_time"]
        if failed is None:
            _set_state(run, "TERMINATED", "", "SUCCESS")
        elif failed["life_cycle_state"] == "INTERNAL_ERROR":
            _set_state(run, "INTERNAL_ERROR", failed.get("state_message", ""), "FAILED")
        else:
            _set_state(run, "TERMINATED", failed.get("state_message", ""), failed["result_state"])

    def _run_id(self, request: Request) -> int:
        text = request.query.get("run_id", "")
        if not text.isdigit():
            raise _invalid("run_id is required and must be a number")
        return int(text)

    def _get_run(self, request: Request, body: Obj) -> Obj:
        run = self._runs.get(self._run_id(request))
        if run is None:
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", "Run does not exist.")
        return copy.deepcopy(run)

    def _get_output(self, request: Request, body: Obj) -> Obj:
        run_id = self._run_id(request)
        if run_id in self._runs:
            raise _invalid(
                "Retrieving the output of runs with multiple tasks is not supported. Please "
                "retrieve the output of each individual task run instead."
            )
        parent = self._runs.get(self._task_of.get(run_id, -1))
        if parent is None:
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", "Run does not exist.")
        task = next(t for t in parent["tasks"] if t["run_id"] == run_id)
        out: Obj = {"metadata": copy.deepcopy(task)}
        if run_id in self._output:
            out["logs"] = self._output[run_id].decode("utf-8", "replace")
            out["logs_truncated"] = False
        if run_id in self._errors:
            out["error"] = self._errors[run_id]
        return out

    def _cancel(self, request: Request, body: Obj) -> Obj:
        run = self._runs.get(int(body.get("run_id") or -1))
        if run is None:
            raise DatabricksError(404, "RESOURCE_DOES_NOT_EXIST", "Run does not exist.")
        for task in run["tasks"]:
            handle = self._handles.pop(task["run_id"], None)
            if handle is not None:
                handle.kill()
        return {}


def _set_state(target: Obj, life_cycle: str, message: str, result: str | None = None) -> None:
    state: Obj = {
        "life_cycle_state": life_cycle,
        "state_message": message,
        "user_cancelled_or_timedout": result in ("CANCELED", "TIMEDOUT"),
    }
    if result is not None:
        state["result_state"] = result
    target["state"] = state
    status: Obj = {"state": "TERMINATED" if life_cycle == "INTERNAL_ERROR" else life_cycle}
    if result is not None:
        code = {"SUCCESS": "SUCCESS", "TIMEDOUT": "TIMEOUT", "CANCELED": "CANCELED"}.get(
            result, "INTERNAL_ERROR" if life_cycle == "INTERNAL_ERROR" else "RUN_EXECUTION_ERROR"
        )
        kind = "SUCCESS" if result == "SUCCESS" else "CLIENT_ERROR"
        status["termination_details"] = {"code": code, "type": kind, "message": message}
    target["status"] = status
