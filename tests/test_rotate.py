"""`rotate` against the emulator after applying the repository's desired state, with the real
clients (Azure SDKs, kubernetes, psycopg and the emulator's real PostgreSQL): a dry run writes
nothing; the LangFuse admin password changes on the server first, then in Key Vault, the
Secret and its Deployments, and the PostgreSQL smoke passes; the OpenAI key rotation never
leaves Key Vault holding a revoked key; external, unknown and plain keys are refused; a failed
step stops the run saying how to finish; another apply's lease refuses it; the next plan shows no
change; no value is printed."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from azure.keyvault.secrets import SecretClient
from kubernetes import client as k8s
from ruamel.yaml import YAML

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import DATABRICKS_TOKEN_VALUE
from nsc_reconcile.engine import Engine
from nsc_reconcile.lease import ApplyLease
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.resources.workload import RESTARTED_AT
from nsc_reconcile.retry import RetryPolicy
from nsc_reconcile.rotate import RotationError, StepResult, plan_rotations, run_rotations
from nsc_reconcile.verification import Status
from tests.conftest import apply_state, run_cli, write_requests
from tests.csi_state import csi_overlay
from tests.paths import DESIRED_STATE
from tests.realpg import pg_connect, requires_postgres

RG = "2dt-final-team4"
SERVER = "nsc-pg-langfuse-dev"
FQDN = f"{SERVER}.postgres.database.azure.com"
ACCOUNT = "nsc-aoai-dev"
PG_SECRET = "langfuse-pg-admin-password"
OPENAI_SECRET = "azure-openai-api-key"
NEXTAUTH_SECRET = "langfuse-nextauth-secret"
NAMESPACE = "langfuse"
DEPLOYMENTS = ("langfuse", "langfuse-worker")


def _write_state(tmp_path: Path, data: dict[str, Any]) -> DesiredState:
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        YAML(typ="safe").dump(data, handle)
    return load_desired_state(path)


def _secret_data(kube: k8s.ApiClient, key: str) -> str:
    secret = k8s.CoreV1Api(kube).read_namespaced_secret("langfuse-secrets", NAMESPACE)
    return base64.b64decode((secret.data or {})[key]).decode()


def _restarted_at(kube: k8s.ApiClient) -> dict[str, str | None]:
    apps = k8s.AppsV1Api(kube)
    found: dict[str, str | None] = {}
    for name in DEPLOYMENTS:
        template = apps.read_namespaced_deployment(name, NAMESPACE).spec.template
        metadata = template.metadata or k8s.V1ObjectMeta()
        found[name] = (metadata.annotations or {}).get(RESTARTED_AT)
    return found


def _keys(clients: Clients) -> tuple[str, str]:
    keys = clients.cognitive.accounts.list_keys(RG, ACCOUNT)
    return str(keys.key1), str(keys.key2)


def _assert_no_change(state: DesiredState, clients: Clients) -> None:
    plan = nsc_reconcile.plan(state, clients)
    assert not plan.has_changes, plan.render("text")
    assert not plan.blocked, plan.render("text")


def _password_matches(ctl: Callable[..., Any], clients: Clients, password: str) -> bool:
    rid = clients.postgres.servers.get(RG, SERVER).id
    return bool(ctl("POST", "check-password", {"id": rid, "password": password})["match"])


@pytest.mark.usefixtures("applied")
def test_a_dry_run_prints_the_steps_and_writes_nothing(
    emu: Emulator,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    vault_client: SecretClient,
) -> None:
    before = {n: vault_client.get_secret(n).properties.version for n in (PG_SECRET, OPENAI_SECRET)}
    code, out, err = run_cli(
        capsys, "rotate", str(DESIRED_STATE), PG_SECRET, OPENAI_SECRET, "--emulator",
        emu.info["arm"],
    )  # fmt: skip
    assert code == 0, out + err
    assert "dry run: nothing was written" in err
    assert f"rotate {PG_SECRET} (generated: 40 alphanumeric characters):" in out
    pg_steps = [
        "1. generate a new value (40 alphanumeric characters), kept in memory only",
        f"2. set the admin password of postgresql_server/{SERVER} (PATCH "
        "administratorLoginPassword: the old password stops working)",
        f"3. write Key Vault secret {PG_SECRET} in nsc-kv-dev (a new version",
        f"4. update Secret {NAMESPACE}/langfuse-secrets from Key Vault",
        f"5. restart Deployment {NAMESPACE}/langfuse, Deployment {NAMESPACE}/langfuse-worker",
        "6. run the PostgreSQL smoke",
    ]
    for step in pg_steps:
        assert step in out
    # The OpenAI steps name the key in use (Key1 after apply: the declared primary_key).
    assert f"rotate {OPENAI_SECRET} (key of openai_account/{ACCOUNT}: Key1 in use):" in out
    assert f"2. regenerate Key2 of openai_account/{ACCOUNT} (not in use" in out
    assert f"4. regenerate Key1 of openai_account/{ACCOUNT} (the old key" in out
    assert write_requests(ctl) == []
    after = {n: vault_client.get_secret(n).properties.version for n in (PG_SECRET, OPENAI_SECRET)}
    assert after == before
    values = [vault_client.get_secret(n).value or "" for n in (PG_SECRET, OPENAI_SECRET)]
    assert all(values)
    assert not [v for v in values if v in out + err]


@requires_postgres
@pytest.mark.usefixtures("applied")
def test_rotating_the_langfuse_admin_password_changes_server_vault_secret_and_pods(
    emu: Emulator,
    ctl: Callable[..., Any],
    clients: Clients,
    kube: k8s.ApiClient,
    vault_client: SecretClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = vault_client.get_secret(PG_SECRET)
    assert old.value
    assert _password_matches(ctl, clients, old.value)
    assert _restarted_at(kube) == dict.fromkeys(DEPLOYMENTS)
    arm = emu.info["arm"]
    code, out, err = run_cli(capsys, "rotate", str(DESIRED_STATE), PG_SECRET, "--emulator", arm,
                             "--yes")  # fmt: skip
    assert code == 0, out + err
    assert "rotation complete" in err
    assert out.count("    done: ") == 6, out
    assert "done: 5 check(s) passed" in out  # the PostgreSQL smoke
    new = vault_client.get_secret(PG_SECRET)
    assert new.value
    assert new.value != old.value
    assert len(new.value) == 40
    assert new.properties.version != old.properties.version
    assert f"done: new version {new.properties.version}" in out
    # The server: only the new password.
    assert _password_matches(ctl, clients, new.value)
    assert not _password_matches(ctl, clients, old.value)
    to = emu.postgres.ensure(str(clients.postgres.servers.get(RG, SERVER).id)).address
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg_connect(FQDN, to, emu.info["ca_cert"], "langfuseadmin", old.value).close()
    with pg_connect(FQDN, to, emu.info["ca_cert"], "langfuseadmin", new.value) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("langfuseadmin",)
    # LangFuse: the Secret holds it and both Deployments were restarted.
    assert _secret_data(kube, "DATABASE_PASSWORD") == new.value
    restarted = _restarted_at(kube)
    assert all(restarted.values()), restarted
    # No value in any output; the next plan shows no change.
    assert old.value not in out + err
    assert new.value not in out + err
    code, plan_out, plan_err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 0, plan_out + plan_err
    assert "No changes." in plan_out


def test_rotating_the_openai_key_never_leaves_a_revoked_key_in_key_vault(
    applied: DesiredState, clients: Clients, vault_client: SecretClient
) -> None:
    before = _keys(clients)
    engine = Engine(applied, clients)
    rotations = plan_rotations(engine, [OPENAI_SECRET])
    lines: list[str] = []
    current: list[tuple[str, bool]] = []  # (step, Key Vault's value is a current key)

    def record(result: StepResult) -> None:
        value = vault_client.get_secret(OPENAI_SECRET).value
        current.append((result.title, value in _keys(clients)))

    result = run_rotations(engine, rotations, lines.append, record)
    assert result.ok, "\n".join(lines)
    assert [title.split(" (")[0] for title, _ in current] == [
        f"check that Key Vault still holds Key1 of openai_account/{ACCOUNT}",
        f"regenerate Key2 of openai_account/{ACCOUNT}",
        f"write Key Vault secret {OPENAI_SECRET} in nsc-kv-dev",
        f"regenerate Key1 of openai_account/{ACCOUNT}",
        f"check that Key Vault holds a current key of openai_account/{ACCOUNT}",
    ]
    assert all(ok for _, ok in current), current
    after = _keys(clients)
    assert after[0] != before[0]
    assert after[1] != before[1]
    held = vault_client.get_secret(OPENAI_SECRET).value
    assert held == after[1]  # Key Vault moved to the secondary key
    # The declared `primary_key` output is satisfied by either current key: no change.
    _assert_no_change(applied, clients)
    text = "\n".join(lines)
    assert not [v for v in (*before, *after) if v in text]
    # A second rotation swaps back to the primary key, still without a revoked key.
    current.clear()
    engine = Engine(applied, clients)
    rotations = plan_rotations(engine, [OPENAI_SECRET])
    assert rotations[0].source == f"key of openai_account/{ACCOUNT}: Key2 in use"
    assert run_rotations(engine, rotations, lines.append, record).ok
    assert all(ok for _, ok in current), current
    assert vault_client.get_secret(OPENAI_SECRET).value == _keys(clients)[0]
    _assert_no_change(applied, clients)
    # The OpenAI data plane (which accepts only current keys) takes the key Key Vault holds.
    report = nsc_reconcile.verify(applied, clients, smoke=["openai"])
    smoke = report.get(f"smoke-openai/{ACCOUNT}/gpt-4o-mini")
    assert smoke.status is Status.PASS, smoke.detail


def test_an_openai_key_the_workload_reads_is_rolled_before_the_old_key_is_revoked(
    ctl: Callable[..., Any], clients: Clients, kube: k8s.ApiClient, vault_client: SecretClient,
    tmp_path: Path,
) -> None:  # fmt: skip
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    data = YAML(typ="safe").load(DESIRED_STATE.read_text(encoding="utf-8"))
    data["langfuse"]["secret_env"]["AZURE_OPENAI_API_KEY"] = OPENAI_SECRET
    state = _write_state(tmp_path, data)
    assert nsc_reconcile.apply(nsc_reconcile.plan(state, clients), state, clients).ok
    engine = Engine(state, clients)
    rotation = plan_rotations(engine, [OPENAI_SECRET])[0]
    titles = [step.title.split(" (")[0] for step in rotation.steps]
    assert titles[3:6] == [
        f"update Secret {NAMESPACE}/langfuse-secrets from Key Vault",
        f"restart Deployment {NAMESPACE}/langfuse, Deployment {NAMESPACE}/langfuse-worker",
        f"regenerate Key1 of openai_account/{ACCOUNT}",
    ]
    seen: list[tuple[str, bool, bool]] = []  # (step, Secret holds a current key, restarted)

    def record(result: StepResult) -> None:
        held = _secret_data(kube, "AZURE_OPENAI_API_KEY")
        seen.append((result.title, held in _keys(clients), all(_restarted_at(kube).values())))

    assert run_rotations(engine, [rotation], lambda _line: None, record).ok
    assert all(current for _, current, _ in seen), seen
    revoke = next(i for i, (title, _, _) in enumerate(seen) if title.startswith("regenerate Key1"))
    assert seen[revoke - 1][2]  # the pods were restarted before the old key was revoked
    assert (
        _secret_data(kube, "AZURE_OPENAI_API_KEY") == vault_client.get_secret(OPENAI_SECRET).value
    )
    _assert_no_change(state, clients)


def test_two_secrets_holding_both_keys_of_an_account_are_refused(
    clients: Clients, tmp_path: Path
) -> None:
    data = YAML(typ="safe").load(DESIRED_STATE.read_text(encoding="utf-8"))
    data["secrets"]["items"].append(
        {
            "name": "openai-key-2",
            "source": {"output": "openai_account/nsc-aoai-${env}.secondary_key"},
        }
    )
    state = _write_state(tmp_path, data)
    with pytest.raises(RotationError, match="Key Vault secret openai-key-2 also holds a key of"):
        plan_rotations(Engine(state, clients), [OPENAI_SECRET])


def test_a_revoked_key_in_key_vault_is_still_drift_after_the_two_key_rule(
    applied: DesiredState, clients: Clients
) -> None:
    # Someone regenerates the key Key Vault holds: neither current key is held, apply fixes it.
    clients.cognitive.accounts.regenerate_key(RG, ACCOUNT, "Key1")
    plan = nsc_reconcile.plan(applied, clients)
    assert [r.address for r in plan.changes] == [f"key_vault_secret/{OPENAI_SECRET}"]
    with pytest.raises(RotationError, match="not a current key of openai_account/nsc-aoai-dev"):
        plan_rotations(Engine(applied, clients), [OPENAI_SECRET])


@pytest.mark.usefixtures("applied")
def test_an_external_key_is_refused_with_what_a_person_must_do(
    emu: Emulator,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "rotate", str(DESIRED_STATE), "databricks-agent-token",
                             "--emulator", emu.info["arm"], "--yes")  # fmt: skip
    assert code == 1
    text = " ".join((out + err).split())
    assert "databricks-agent-token is an external secret" in text
    assert "databricks tokens create" in text
    assert "az keyvault secret set --vault-name nsc-kv-dev --name databricks-agent-token" in text
    assert "--file TOKEN_FILE" in text
    assert "revoke the old token: `databricks tokens delete OLD_TOKEN_ID`" in text
    assert DATABRICKS_TOKEN_VALUE not in out + err
    assert write_requests(ctl) == []


@pytest.mark.usefixtures("desired_state")
def test_unknown_and_plain_keys_are_refused_before_anything_is_read(
    emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ctl("DELETE", "requests")
    code, _out, err = run_cli(capsys, "rotate", str(DESIRED_STATE), "no-such-key",
                             "agent-execute-mode", "--emulator", emu.info["arm"], "--yes")  # fmt: skip
    assert code == 1
    text = " ".join(err.split())
    assert "no Key Vault secret named no-such-key in the desired state; declared: " in text
    assert "azure-openai-api-key, azure-openai-endpoint" in text
    assert "agent-execute-mode is not a credential (`sensitive: false`)" in text
    assert write_requests(ctl) == []


@pytest.mark.usefixtures("applied")
def test_from_outside_a_private_vault_nothing_is_written_and_the_reason_is_named(
    emu: Emulator,
    ctl: Callable[..., Any],
    clients: Clients,
    vault_client: SecretClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = vault_client.get_secret(PG_SECRET).value
    keys = _keys(clients)
    ctl("POST", "config", {"enforce_vault_network": True})  # a runner outside the VNet
    ctl("DELETE", "requests")
    try:
        code, _out, err = run_cli(capsys, "rotate", str(DESIRED_STATE), PG_SECRET, OPENAI_SECRET,
                                 "--emulator", emu.info["arm"], "--yes")  # fmt: skip
    finally:
        ctl("POST", "config", {"enforce_vault_network": False})
    assert code == 1
    text = " ".join(err.split())
    assert (
        f"{PG_SECRET}: the rotation reads Key Vault values to fill the LangFuse Secret and run "
        f"the smoke, and cannot read secret {PG_SECRET} from Key Vault nsc-kv-dev (HTTP 403 "
        "ForbiddenByConnection): for a private vault, run inside its VNet; nothing was written"
    ) in text
    assert f"cannot read secret {OPENAI_SECRET} from Key Vault nsc-kv-dev" in text
    assert write_requests(ctl) == []
    assert password
    assert _password_matches(ctl, clients, password)
    assert _keys(clients) == keys


def test_a_failed_step_stops_the_run_and_says_how_to_finish(
    applied: DesiredState,
    emu: Emulator,
    ctl: Callable[..., Any],
    clients: Clients,
    kube: k8s.ApiClient,
    vault_client: SecretClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = vault_client.get_secret(NEXTAUTH_SECRET).value
    ctl("POST", "faults", [{"method": "PATCH", "path": "/secrets/langfuse-secrets$",
                            "status": 403, "code": "Forbidden", "count": 1}])  # fmt: skip
    arm = emu.info["arm"]
    code, out, err = run_cli(capsys, "rotate", str(DESIRED_STATE), NEXTAUTH_SECRET, "--emulator",
                             arm, "--yes")  # fmt: skip
    assert code == 3, out + err
    new = vault_client.get_secret(NEXTAUTH_SECRET).value
    assert new
    assert new != old
    assert f"{NEXTAUTH_SECRET} [3/4] update Secret {NAMESPACE}/langfuse-secrets" in out
    assert (
        "FAILED: KubernetesApiError: Kubernetes API apply of Secret langfuse/langfuse-secrets: "
        "403 Forbidden"
    ) in out
    assert (
        f"stopped: Key Vault holds the new value, Secret {NAMESPACE}/langfuse-secrets the old "
        "one: run `apply FILE` (it writes the Secret from Key Vault), then `kubectl -n langfuse "
        "rollout restart deployment/langfuse deployment/langfuse-worker`"
    ) in out
    assert "[4/4]" not in out  # the restart did not run
    assert _secret_data(kube, "NEXTAUTH_SECRET") == old
    assert _restarted_at(kube) == dict.fromkeys(DEPLOYMENTS)
    assert old
    assert old not in out + err
    assert new not in out + err
    # Finishing by hand as told: apply writes the Secret; then nothing is left to change.
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 0, out + err
    assert _secret_data(kube, "NEXTAUTH_SECRET") == new
    _assert_no_change(applied, clients)


def test_a_rotation_is_refused_while_another_apply_holds_the_lease(
    applied: DesiredState,
    emu: Emulator,
    clients: Clients,
    vault_client: SecretClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = vault_client.get_secret(NEXTAUTH_SECRET).properties.version
    lease = ApplyLease(clients, applied.resource_group, applied.environment)
    lease.acquire()
    try:
        code, out, err = run_cli(capsys, "rotate", str(DESIRED_STATE), NEXTAUTH_SECRET,
                                 "--emulator", emu.info["arm"], "--yes")  # fmt: skip
    finally:
        lease.release()
    assert code == 1
    assert "another apply is running on environment dev" in " ".join(err.split())
    assert "[1/4]" not in out  # no step ran
    assert vault_client.get_secret(NEXTAUTH_SECRET).properties.version == version


# --------------------------------------------------------------------------- secrets_delivery: csi
@pytest.fixture
def csi_file(ctl: Callable[..., Any], clients: Clients, tmp_path: Path) -> Path:
    """The repository's desired state in `secrets_delivery: csi` (tests/csi_state.py),
    applied: the CSI driver synced langfuse-secrets from Key Vault as the LangFuse identity."""
    ctl("POST", "config", {"lro_seconds": {"*": 0}, "principal_replication_seconds": 0})
    path = csi_overlay(tmp_path)
    apply_state(load_desired_state(path), clients, ctl)
    return path


@requires_postgres
def test_in_csi_mode_a_rotation_restarts_the_readers_and_the_driver_syncs_the_new_value(
    csi_file: Path,
    emu: Emulator,
    ctl: Callable[..., Any],
    clients: Clients,
    kube: k8s.ApiClient,
    vault_client: SecretClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = vault_client.get_secret(PG_SECRET).value
    assert old
    assert _secret_data(kube, "DATABASE_PASSWORD") == old
    arm = emu.info["arm"]
    code, out, err = run_cli(capsys, "rotate", str(csi_file), PG_SECRET, "--emulator", arm)
    assert code == 0, out + err
    steps = [
        f"3. write Key Vault secret {PG_SECRET} in nsc-kv-dev",
        f"4. restart Deployment {NAMESPACE}/langfuse, Deployment {NAMESPACE}/langfuse-worker "
        f"(rollout restart: the new pods mount SecretProviderClass {NAMESPACE}/langfuse-key-vault, "
        "the CSI driver fetches the new version from Key Vault as "
        f"user_assigned_identity/id-langfuse-dev and syncs Secret {NAMESPACE}/langfuse-secrets)",
        f"5. wait for the rollout of Deployment {NAMESPACE}/langfuse, Deployment "
        f"{NAMESPACE}/langfuse-worker (their new pods ready: the mount fetched the new version), "
        "then check secrets-delivery/langfuse",
        "6. run the PostgreSQL smoke",
    ]
    for step in steps:
        assert step in out, out
    assert "update Secret" not in out  # the tool writes no Secret in csi mode
    ctl("DELETE", "requests")
    code, out, err = run_cli(capsys, "rotate", str(csi_file), PG_SECRET, "--emulator", arm,
                             "--yes")  # fmt: skip
    assert code == 0, out + err
    assert out.count("    done: ") == 6, out
    assert "done: 2 rolled out; secrets-delivery/langfuse PASS" in out
    assert "done: 5 check(s) passed" in out  # the PostgreSQL smoke, with the new password
    new = vault_client.get_secret(PG_SECRET).value
    assert new
    assert new != old
    # The driver synced the new version into the Secret the pods read (compared in memory);
    # the tool itself wrote no Secret.
    assert _secret_data(kube, "DATABASE_PASSWORD") == new
    assert not [w for w in write_requests(ctl) if "/secrets/langfuse-secrets" in w]
    assert all(_restarted_at(kube).values())
    assert old not in out + err
    assert new not in out + err
    _assert_no_change(load_desired_state(csi_file), clients)


def test_in_csi_mode_a_missing_grant_stops_the_rotation_at_the_rollout_naming_it(
    csi_file: Path,
    emu: Emulator,
    ctl: Callable[..., Any],
    clients: Clients,
    kube: k8s.ApiClient,
    vault_client: SecretClient,
) -> None:
    old = vault_client.get_secret(NEXTAUTH_SECRET).value
    ctl("POST", "config", {"enforce_vault_rbac": True})
    identity = next(
        i
        for i in emu.world.list_by_type("Microsoft.ManagedIdentity/userAssignedIdentities")
        if i["name"] == "id-langfuse-dev"
    )
    grant = next(
        a
        for a in emu.world.list_by_type("Microsoft.Authorization/roleAssignments")
        if a["properties"]["principalId"] == identity["properties"]["principalId"]
        and a["properties"]["scope"].endswith(f"/secrets/{NEXTAUTH_SECRET}")
    )
    ctl("DELETE", "state?id=" + urllib.parse.quote(grant["id"], safe=""))
    state = load_desired_state(csi_file)
    quick = RetryPolicy(attempts=2, initial_wait_s=0.05, max_wait_s=0.1, patience_s=0.3)
    engine = Engine(state, clients, retry=quick)
    rotations = plan_rotations(engine, [NEXTAUTH_SECRET])
    lines: list[str] = []
    result = run_rotations(engine, rotations, lines.append)
    assert not result.ok
    failed = result.steps[-1]
    assert (failed.number, failed.total) == (4, 4)
    assert failed.title.startswith("wait for the rollout of Deployment langfuse/langfuse")
    assert "Deployment langfuse: 0/1 updated replicas available" in failed.outcome
    assert "ForbiddenByRbac" in failed.outcome
    assert f"objectName:{NEXTAUTH_SECRET}" in failed.outcome
    assert "missing Key Vault Secrets User grant of user_assigned_identity/id-langfuse-dev" in (
        failed.if_failed
    )
    assert "kubectl -n langfuse rollout restart deployment/langfuse" in failed.if_failed
    new = vault_client.get_secret(NEXTAUTH_SECRET).value
    assert new
    assert new != old
    # The mount failed: the driver did not sync the new value.
    assert _secret_data(kube, "NEXTAUTH_SECRET") == old
    shown = "\n".join(lines) + failed.outcome + failed.if_failed
    assert old
    assert old not in shown
    assert new not in shown
