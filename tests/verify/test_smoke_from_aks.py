"""``verify --smoke --from aks|databricks`` against the emulator, after applying the repository's
desired state: the connectivity smokes run INSIDE the network (a Job on the cluster whose pod
runs the in-network script with the real PostgreSQL, the OpenAI plane and LangFuse; a
Databricks one-time run) and pass with evidence, leave no Job/ConfigMap/Secret behind and show
no secret; a wrong password in the cluster, a deleted deployment or a missing Secret key fail
the matching check; Databricks SKIPs naming the missing field when no workspace is declared."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from kubernetes import client as k8s
from ruamel.yaml import YAML

from nsc_reconcile import load_desired_state
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.registry import public_digest
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport
from tests.conftest import verify_on
from tests.paths import DESIRED_STATE

CONNECTIVITY = ["dns", "postgres", "openai", "langfuse"]
NS = "langfuse"
PG_ID = "smoke-postgres/nsc-pg-langfuse-dev/from-aks"
OPENAI_ID = "smoke-openai/nsc-aoai-dev/gpt-4o-mini/from-aks"
LANGFUSE_ID = "smoke-langfuse/langfuse/from-aks"
DNS_NAMES = (
    "nsc-aoai-dev.openai.azure.com",
    "nsc-pg-langfuse-dev.postgres.database.azure.com",
    "langfuse-internal.langfuse.svc.cluster.local",
)
DEPLOYMENT_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000a1b2/resourceGroups/2dt-final-team4/"
    "providers/Microsoft.CognitiveServices/accounts/nsc-aoai-dev/deployments/gpt-4o-mini"
)
VAULT_SECRETS = (
    "langfuse-pg-admin-password",
    "azure-openai-api-key",
    "langfuse-public-key",
    "langfuse-secret-key",
    "databricks-agent-token",
)


@pytest.fixture
def core(kube: k8s.ApiClient) -> Any:
    return k8s.CoreV1Api(kube)


def _verify(state: DesiredState, emu: Emulator, origin: str) -> VerifyReport:
    return verify_on(state, emu, smoke=CONNECTIVITY, origin=origin)


def _smokes(report: VerifyReport) -> dict[str, Any]:
    return {c.id: c for c in report.checks if c.id.startswith("smoke-")}


def _secret_values(vault_client: SecretClient) -> list[str]:
    return [str(vault_client.get_secret(name).value) for name in VAULT_SECRETS]


def _leftovers(core: Any, kube: k8s.ApiClient) -> list[str]:
    selector = "app.kubernetes.io/name=nsc-smoke"
    batch: Any = k8s.BatchV1Api(kube)
    found = [f"Job {j.metadata.name}" for j in batch.list_namespaced_job(NS).items]
    found += [f"Pod {p.metadata.name}" for p in core.list_namespaced_pod(NS).items]
    for kind, lister in (("ConfigMap", core.list_namespaced_config_map),
                         ("Secret", core.list_namespaced_secret)):  # fmt: skip
        found += [f"{kind} {o.metadata.name}" for o in lister(NS, label_selector=selector).items]
    return found


def _posted(ctl: Callable[..., Any], plural: str) -> list[dict[str, Any]]:
    return [
        r["request_body"]
        for r in ctl("GET", "requests")
        if r["plane"] == "kubernetes" and r["method"] == "POST" and r["path"].endswith(plural)
    ]


def test_from_aks_every_connectivity_smoke_passes_from_a_job_and_nothing_is_left(
    applied: DesiredState,
    emu: Emulator,
    ctl: Callable[..., Any],
    core: Any,
    kube: k8s.ApiClient,
    vault_client: SecretClient,
) -> None:
    report = _verify(applied, emu, "aks")
    smokes = _smokes(report)
    expected = {f"smoke-dns/{name}/from-aks" for name in DNS_NAMES}
    expected |= {PG_ID, OPENAI_ID, LANGFUSE_ID}
    assert set(smokes) == expected, report.render()
    assert all(c.status is Status.PASS for c in smokes.values()), report.render()
    for check in smokes.values():
        assert "Job langfuse/nsc-smoke-" in check.evidence
        assert "nscacrdev.azurecr.io/library/python:3.12-slim" in check.evidence
    # What each check proves, from inside: private addresses, verified TLS, SCRAM, a trace.
    openai_dns = smokes["smoke-dns/nsc-aoai-dev.openai.azure.com/from-aks"].evidence
    assert "CNAME nsc-aoai-dev.privatelink.openai.azure.com -> A 10.10.1." in openai_dns
    pg = smokes[PG_ID].evidence
    assert "certificate verified for nsc-pg-langfuse-dev.postgres.database.azure.com" in pg
    assert "SCRAM-SHA-256 login as langfuseadmin to database langfuse" in pg
    assert "SELECT 1 returned 1" in pg
    assert "HTTP 200, model gpt-4o-mini" in smokes[OPENAI_ID].evidence
    assert "read back by id" in smokes[LANGFUSE_ID].evidence

    assert _leftovers(core, kube) == []
    # The Job as created: no retry, bounded, non-root, credentials only by reference.
    (job,) = _posted(ctl, "/jobs")
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 180)
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    (container,) = pod["containers"]
    # the registry's copy of the declared image, pinned by its digest
    assert container["image"] == (
        f"nscacrdev.azurecr.io/library/python:3.12-slim@{public_digest('library/python', '3.12-slim')}"
    )
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["NSC_SMOKE_PG_PASSWORD"] == {"name": "langfuse-secrets", "key": "DATABASE_PASSWORD"}
    assert refs["NSC_SMOKE_LANGFUSE_SECRET_KEY"]["name"] == "langfuse-secrets"
    temporary = refs["NSC_SMOKE_OPENAI_KEY"]["name"]
    assert temporary == job["metadata"]["name"]  # the short-lived Secret, deleted with the Job
    # No secret value anywhere but in that Secret: not in the Job, the ConfigMap, the report.
    values = _secret_values(vault_client)
    shown = json.dumps([job, _posted(ctl, "/configmaps")]) + report.render()
    shown += report.render("json")
    assert [v for v in values if v in shown] == []
    (secret,) = _posted(ctl, "/secrets")
    assert secret["stringData"] == {"NSC_SMOKE_OPENAI_KEY": values[1]}


def test_a_wrong_password_in_the_cluster_fails_only_the_postgres_check(
    applied: DesiredState, emu: Emulator, core: Any, kube: k8s.ApiClient
) -> None:
    core.patch_namespaced_secret(
        "langfuse-secrets", NS, {"stringData": {"DATABASE_PASSWORD": "not-the-password"}}
    )
    smokes = _smokes(_verify(applied, emu, "aks"))
    assert smokes[PG_ID].status is Status.FAIL
    assert 'password authentication failed for user "langfuseadmin"' in smokes[PG_ID].detail
    assert "not-the-password" not in smokes[PG_ID].detail + smokes[PG_ID].evidence
    others = {i: c.status for i, c in smokes.items() if i != PG_ID}
    assert set(others.values()) == {Status.PASS}, others
    assert _leftovers(core, kube) == []


def test_a_deleted_deployment_fails_only_the_openai_check(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    ctl("DELETE", f"state?id={DEPLOYMENT_ID}")
    smokes = _smokes(_verify(applied, emu, "aks"))
    assert smokes[OPENAI_ID].status is Status.FAIL
    assert "HTTP 404" in smokes[OPENAI_ID].detail
    assert "DeploymentNotFound" in smokes[OPENAI_ID].detail
    others = {i: c.status for i, c in smokes.items() if i != OPENAI_ID}
    assert set(others.values()) == {Status.PASS}, others


def test_a_key_missing_from_the_cluster_secret_fails_fast_naming_it(
    applied: DesiredState, emu: Emulator, core: Any, kube: k8s.ApiClient
) -> None:
    remove = [{"op": "remove", "path": "/data/DATABASE_PASSWORD"}]  # a JSON patch
    core.patch_namespaced_secret("langfuse-secrets", NS, remove)
    report = _verify(applied, emu, "aks")
    smokes = _smokes(report)
    assert {c.status for c in smokes.values()} == {Status.FAIL}
    for check in smokes.values():
        assert "CreateContainerConfigError: couldn't find key DATABASE_PASSWORD in Secret " in (
            check.detail
        )
        assert "langfuse/langfuse-secrets" in check.detail
    assert report.seconds < 60  # not the Job's 180 s deadline
    assert _leftovers(core, kube) == []


def test_outside_the_vnet_the_openai_key_comes_from_arm_and_the_check_says_so(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any], vault_client: SecretClient
) -> None:
    values = _secret_values(vault_client)
    ctl("POST", "config", {"enforce_vault_network": True})  # the vault's data plane: 403
    report = _verify(applied, emu, "aks")
    smokes = _smokes(report)
    assert {c.status for c in smokes.values()} == {Status.PASS}, report.render()
    evidence = smokes[OPENAI_ID].evidence
    assert "note: Key Vault secret azure-openai-api-key is not readable from here" in evidence
    assert "read through ARM (listKeys)" in evidence
    shown = report.render() + report.render("json")
    assert [v for v in values if v in shown] == []


# ------------------------------------------------------------------------------ databricks
def _with_databricks(tmp_path: Path) -> DesiredState:
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    # No secret_scope: the vault's name, the scope the generated documents tell users to create.
    data["smoke"]["databricks"] = {
        "workspace_url": "https://adb-1234567890123456.7.azuredatabricks.net"
    }
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return load_desired_state(path)


@pytest.mark.usefixtures("applied")
def test_from_databricks_the_smokes_pass_from_a_one_time_run(
    emu: Emulator,
    tmp_path: Path,
    ctl: Callable[..., Any],
    vault_client: SecretClient,
) -> None:
    report = _verify(_with_databricks(tmp_path), emu, "databricks")
    smokes = _smokes(report)
    passed = {i for i, c in smokes.items() if c.status is Status.PASS}
    assert passed == {
        "smoke-dns/nsc-aoai-dev.openai.azure.com/from-databricks",
        "smoke-dns/nsc-pg-langfuse-dev.postgres.database.azure.com/from-databricks",
        "smoke-postgres/nsc-pg-langfuse-dev/from-databricks",
        "smoke-openai/nsc-aoai-dev/gpt-4o-mini/from-databricks",
    }, report.render()
    langfuse = smokes["smoke-langfuse/langfuse/from-databricks"]
    assert langfuse.status is Status.SKIP
    assert "ClusterIP" in langfuse.detail
    pg = smokes["smoke-postgres/nsc-pg-langfuse-dev/from-databricks"].evidence
    assert "(TERMINATED/SUCCESS)" in pg
    assert "SCRAM-SHA-256 login" in pg
    # Credentials went as secret-scope references; no value left this process.
    (submitted,) = [
        r["request_body"]
        for r in ctl("GET", "requests")
        if r["plane"] == "databricks" and r["path"].endswith("/runs/submit")
    ]
    env = submitted["tasks"][0]["new_cluster"]["spark_env_vars"]
    assert env["NSC_SMOKE_PG_PASSWORD"] == "{{secrets/nsc-kv-dev/langfuse-pg-admin-password}}"
    values = _secret_values(vault_client)
    shown = json.dumps(submitted) + report.render() + report.render("json")
    assert [v for v in values if v in shown] == []


def test_from_databricks_skips_naming_the_missing_workspace(
    applied: DesiredState, emu: Emulator
) -> None:
    smokes = _smokes(_verify(applied, emu, "databricks"))
    assert smokes
    for check in smokes.values():
        assert check.id.endswith("/from-databricks")
        assert check.status is Status.SKIP
    dns = smokes["smoke-dns/nsc-aoai-dev.openai.azure.com/from-databricks"]
    assert "smoke.databricks.workspace_url is not declared" in dns.detail
