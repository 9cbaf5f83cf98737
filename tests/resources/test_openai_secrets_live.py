"""OpenAI account/deployment and Key Vault secret reconcilers against the emulator, through
the real SDK clients and the engine: create from the baseline, converge (a second plan makes
no write call), repair drift, generate once, never leak a value."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from click.testing import CliRunner

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import SENSITIVE, Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import (
    DATABRICKS_TOKEN_SECRET,
    DATABRICKS_TOKEN_VALUE,
    KEY_VAULT_NAME,
    RESOURCE_GROUP,
)
from nsc_reconcile.engine import Engine, PlanBlockedError
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome, Plan
from nsc_reconcile.retry import RetryPolicy
from tests.emulator.conftest import control
from tests.paths import DESIRED_STATE

ACCOUNT = "openai_account/nsc-aoai-dev"
DEPLOYMENT = "openai_deployment/nsc-aoai-dev/gpt-4o-mini"
# Every secret of desired_state.yaml this module can reconcile (log-analytics-dcr-id needs
# the data collection rule, another module's kind).
SECRETS = [
    "azure-openai-api-key",
    "azure-openai-endpoint",
    "azure-openai-deployment",
    "langfuse-public-key",
    "langfuse-secret-key",
    "agent-execute-mode",
    "databricks-agent-token",
    "langfuse-pg-admin-password",
    "langfuse-nextauth-secret",
    "langfuse-salt",
    "langfuse-encryption-key",
    "langfuse-clickhouse-password",
    "langfuse-redis-password",
    "langfuse-minio-password",
]
SECRET_TARGETS = [f"key_vault_secret/{name}" for name in SECRETS]
WRITES = {"PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


@pytest.fixture
def clients(emu: Emulator) -> Clients:
    control(emu, "POST", "config", {"lro_seconds": {"*": 0}})
    return Clients(AzureTarget.for_emulator(emu.info["arm"]))


@pytest.fixture
def engine(state: DesiredState, clients: Clients) -> Callable[..., Engine]:
    """A fresh engine per run (as the CLI makes one per command), quick retries."""

    def make(desired: DesiredState | None = None) -> Engine:
        return Engine(desired or state, clients, retry=RetryPolicy(attempts=3, initial_wait_s=0.01))

    return make


def _plan(make: Callable[..., Engine], targets: list[str]) -> Plan:
    return make().plan(targets=targets)


def _apply(make: Callable[..., Engine], targets: list[str]) -> tuple[Plan, Any]:
    engine = make()
    plan = engine.plan(targets=targets)
    return plan, engine.apply(plan)


def _requests(emu: Emulator) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = control(emu, "GET", "requests")
    return found


def _writes(emu: Emulator) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in _requests(emu) if r["method"] in WRITES]


def _value(emu: Emulator, name: str) -> str:
    return str(emu.world.secrets.get(KEY_VAULT_NAME, name)["value"])


def _account_id(emu: Emulator) -> str:
    return (
        f"/subscriptions/{emu.world.subscription_id}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.CognitiveServices/accounts/nsc-aoai-dev"
    )


# ------------------------------------------------------------------------------- OpenAI
def test_account_and_deployment_created_then_no_change(
    emu: Emulator, engine: Callable[..., Engine]
) -> None:
    plan, result = _apply(engine, [DEPLOYMENT])
    assert plan.get(ACCOUNT).action is Action.CREATE
    assert plan.get(DEPLOYMENT).action is Action.CREATE
    assert result.ok, [r.detail for r in result.resources]
    account = emu.world.get(_account_id(emu))
    assert account is not None
    assert account["kind"] == "OpenAI"
    props = account["properties"]
    assert props["customSubDomainName"] == "nsc-aoai-dev"
    assert props["publicNetworkAccess"] == "Disabled"
    assert props["networkAcls"] == {"defaultAction": "Deny", "ipRules": []}
    assert props["disableLocalAuth"] is False
    deployment = emu.world.get(_account_id(emu) + "/deployments/gpt-4o-mini")
    assert deployment is not None
    assert deployment["sku"] == {"name": "GlobalStandard", "capacity": 30}
    assert deployment["properties"]["model"] == {
        "format": "OpenAI",
        "name": "gpt-4o-mini",
        "version": "2024-07-18",
    }
    assert deployment["tags"]["managed-by"] == "nsc-reconcile"

    control(emu, "DELETE", "requests")
    again = _plan(engine, [DEPLOYMENT])
    assert {r.address: r.action for r in again.resources} == {
        ACCOUNT: Action.UNCHANGED,
        DEPLOYMENT: Action.UNCHANGED,
    }
    assert _writes(emu) == []


def test_public_access_drift_shows_one_field_and_is_repaired(
    emu: Emulator, engine: Callable[..., Engine]
) -> None:
    _apply(engine, [ACCOUNT])
    drifted = emu.world.get(_account_id(emu))
    assert drifted is not None
    drifted["properties"]["publicNetworkAccess"] = "Enabled"
    control(emu, "PUT", f"state?id={_account_id(emu)}", drifted)

    plan = _plan(engine, [ACCOUNT])
    account = plan.get(ACCOUNT)
    assert account.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in account.changes] == [
        ("properties.publicNetworkAccess", "Enabled", "Disabled")
    ]
    control(emu, "DELETE", "requests")
    result = make_apply(engine, plan)
    assert result.get(ACCOUNT).outcome is Outcome.UPDATED
    writes = _writes(emu)
    assert len(writes) == 1
    assert writes[0].startswith("PUT ")
    repaired = emu.world.get(_account_id(emu))
    assert repaired is not None
    assert repaired["properties"]["publicNetworkAccess"] == "Disabled"
    assert repaired["tags"] == drifted["tags"]
    assert _plan(engine, [ACCOUNT]).get(ACCOUNT).action is Action.UNCHANGED


def make_apply(make: Callable[..., Engine], plan: Plan) -> Any:
    return make().apply(plan)


def test_account_upgraded_to_ai_services_is_not_drift_and_keeps_its_kind(
    emu: Emulator, engine: Callable[..., Engine]
) -> None:
    _apply(engine, [ACCOUNT])
    upgraded = emu.world.get(_account_id(emu))
    assert upgraded is not None
    upgraded["kind"] = "AIServices"
    upgraded["tags"]["upgraded-by"] = "microsoft"
    control(emu, "PUT", f"state?id={_account_id(emu)}", upgraded)
    assert _plan(engine, [ACCOUNT]).get(ACCOUNT).action is Action.UNCHANGED

    upgraded["properties"]["networkAcls"]["defaultAction"] = "Allow"
    control(emu, "PUT", f"state?id={_account_id(emu)}", upgraded)
    plan, result = _apply(engine, [ACCOUNT])
    assert [c.path for c in plan.get(ACCOUNT).changes] == ["properties.networkAcls.defaultAction"]
    assert result.get(ACCOUNT).outcome is Outcome.UPDATED
    after = emu.world.get(_account_id(emu))
    assert after is not None
    assert after["kind"] == "AIServices"  # never "downgraded" by our write
    assert after["tags"]["upgraded-by"] == "microsoft"
    assert after["properties"]["networkAcls"]["defaultAction"] == "Deny"


def test_subdomain_change_is_replacement_and_never_done(
    emu: Emulator, engine: Callable[..., Engine]
) -> None:
    _apply(engine, [ACCOUNT])
    changed = emu.world.get(_account_id(emu))
    assert changed is not None
    changed["properties"]["customSubDomainName"] = "nsc-openai-legacy"
    control(emu, "PUT", f"state?id={_account_id(emu)}", changed)
    plan = _plan(engine, [ACCOUNT])
    assert plan.get(ACCOUNT).action is Action.REPLACE
    control(emu, "DELETE", "requests")
    for allow_replace in (False, True):
        result = engine().apply(plan, allow_replace=allow_replace)
        assert result.get(ACCOUNT).outcome in (Outcome.BLOCKED, Outcome.FAILED)
        assert "customSubDomainName" in (result.get(ACCOUNT).detail or "")
    assert _writes(emu) == []


# ------------------------------------------------------------------------------- secrets
def test_secrets_created_from_baseline_then_no_writes(
    emu: Emulator, engine: Callable[..., Engine], clients: Clients
) -> None:
    plan, result = _apply(engine, SECRET_TARGETS)
    actions = {r.address: r.action for r in plan.resources}
    assert actions["key_vault_secret/databricks-agent-token"] is Action.UNCHANGED  # external
    assert all(actions[t] is Action.CREATE for t in SECRET_TARGETS if "databricks" not in t), (
        actions
    )
    assert result.ok, [(r.address, r.detail) for r in result.resources if r.detail]

    keys = clients.cognitive.accounts.list_keys(RESOURCE_GROUP, "nsc-aoai-dev")
    assert _value(emu, "azure-openai-api-key") == keys.key1
    assert _value(emu, "azure-openai-endpoint") == "https://nsc-aoai-dev.openai.azure.com/"
    assert _value(emu, "azure-openai-deployment") == "gpt-4o-mini"
    assert _value(emu, "agent-execute-mode") == "dry-run"
    assert re.fullmatch(r"pk-lf-[0-9a-f]{32}", _value(emu, "langfuse-public-key"))
    assert re.fullmatch(r"[0-9a-f]{64}", _value(emu, "langfuse-encryption-key"))
    assert re.fullmatch(r"[A-Za-z0-9]{40}", _value(emu, "langfuse-pg-admin-password"))
    assert _value(emu, DATABRICKS_TOKEN_SECRET) == DATABRICKS_TOKEN_VALUE  # untouched
    assert len(emu.world.secrets.versions(KEY_VAULT_NAME, DATABRICKS_TOKEN_SECRET)) == 1
    tags = emu.world.secrets.get(KEY_VAULT_NAME, "azure-openai-api-key")["tags"]
    assert tags["managed-by"] == "nsc-reconcile"
    assert re.fullmatch(r"[0-9a-f]{64}", tags["nsc-value-hmac"])  # keyed (secrets.py)
    assert "nsc-value-sha256" not in tags

    control(emu, "DELETE", "requests")
    again = _plan(engine, SECRET_TARGETS)
    changed = {r.address: r.action for r in again.resources if r.action is not Action.READ}
    assert set(changed.values()) == {Action.UNCHANGED}, changed
    assert _writes(emu) == []  # only GETs (and the listKeys POST the api-key secret needs)


def test_generated_secret_is_generated_once(emu: Emulator, engine: Callable[..., Engine]) -> None:
    _apply(engine, SECRET_TARGETS)
    before = {n: emu.world.secrets.versions(KEY_VAULT_NAME, n) for n in SECRETS}
    control(emu, "DELETE", "requests")
    _, result = _apply(engine, SECRET_TARGETS)
    assert result.ok
    assert {r.outcome for r in result.resources} <= {Outcome.UNCHANGED, Outcome.READ}
    after = {n: emu.world.secrets.versions(KEY_VAULT_NAME, n) for n in SECRETS}
    assert after == before  # no new version anywhere, same values
    assert len(after["langfuse-public-key"]) == 1
    assert _writes(emu) == []


def test_value_changed_out_of_band_is_sensitive_update_and_repaired(
    emu: Emulator, engine: Callable[..., Engine], vault_client: SecretClient
) -> None:
    _apply(engine, SECRET_TARGETS)
    name = "azure-openai-api-key"
    address = f"key_vault_secret/{name}"
    original = _value(emu, name)
    tags = emu.world.secrets.get(KEY_VAULT_NAME, name)["tags"]
    vault_client.set_secret(name, "0123456789abcdef0123456789abcdef", tags=tags)  # tags kept

    plan = _plan(engine, [address])
    secret = plan.get(address)
    assert secret.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in secret.changes] == [
        ("tags.nsc-value-hmac", SENSITIVE, SENSITIVE)
    ]
    result = engine().apply(plan)
    assert result.get(address).outcome is Outcome.UPDATED
    assert _value(emu, name) == original
    assert len(emu.world.secrets.versions(KEY_VAULT_NAME, name)) == 3
    assert _plan(engine, [address]).get(address).action is Action.UNCHANGED


def test_tags_only_drift_updates_without_a_new_version(
    emu: Emulator, engine: Callable[..., Engine], vault_client: SecretClient
) -> None:
    _apply(engine, SECRET_TARGETS)
    name = "langfuse-salt"
    value = _value(emu, name)
    vault_client.update_secret_properties(name, tags={"owner": "someone"})
    plan = _plan(engine, [f"key_vault_secret/{name}"])
    assert plan.get(f"key_vault_secret/{name}").action is Action.BLOCKED  # no longer ours
    with pytest.raises(PlanBlockedError):  # a plan with a blocked item is not applied
        engine().apply(plan)

    vault_client.update_secret_properties(
        name, tags={"owner": "someone", "managed-by": "nsc-reconcile", "nsc-environment": "dev"}
    )
    plan, result = _apply(engine, [f"key_vault_secret/{name}"])
    assert {c.path for c in plan.get(f"key_vault_secret/{name}").changes} == {
        "tags.environment",
        "tags.plan",
        "tags.project",
    }
    assert result.get(f"key_vault_secret/{name}").outcome is Outcome.UPDATED
    versions = emu.world.secrets.versions(KEY_VAULT_NAME, name)
    assert len(versions) == 1
    assert versions[0]["value"] == value
    assert versions[0]["tags"]["owner"] == "someone"  # others' tags survive


def test_soft_deleted_secret_is_recovered(
    emu: Emulator, engine: Callable[..., Engine], vault_client: SecretClient
) -> None:
    _apply(engine, SECRET_TARGETS)
    generated = _value(emu, "langfuse-redis-password")
    for name in ("langfuse-redis-password", "azure-openai-endpoint"):
        vault_client.begin_delete_secret(name).result()
    targets = ["key_vault_secret/langfuse-redis-password", "key_vault_secret/azure-openai-endpoint"]
    plan, result = _apply(engine, targets)
    assert {plan.get(t).action for t in targets} == {Action.CREATE}
    assert result.ok, [r.detail for r in result.resources]
    assert _value(emu, "langfuse-redis-password") == generated  # recovered, not regenerated
    assert _value(emu, "azure-openai-endpoint") == "https://nsc-aoai-dev.openai.azure.com/"
    assert {_plan(engine, targets).get(t).action for t in targets} == {Action.UNCHANGED}


def test_external_secret_missing_is_blocked_and_never_written(
    emu: Emulator, engine: Callable[..., Engine]
) -> None:
    emu.world.secrets.delete(KEY_VAULT_NAME, DATABRICKS_TOKEN_SECRET)
    emu.world.secrets.purge(KEY_VAULT_NAME, DATABRICKS_TOKEN_SECRET)
    address = f"key_vault_secret/{DATABRICKS_TOKEN_SECRET}"
    plan = _plan(engine, [address])
    assert plan.get(address).action is Action.BLOCKED
    assert "external secret databricks-agent-token does not exist" in (
        plan.get(address).reason or ""
    )
    with pytest.raises(PlanBlockedError):
        engine().apply(plan)
    assert emu.world.secrets.versions(KEY_VAULT_NAME, DATABRICKS_TOKEN_SECRET) == []


def test_private_vault_writes_through_the_control_plane(
    emu: Emulator, engine: Callable[..., Engine], state: DesiredState
) -> None:
    control(emu, "POST", "config", {"enforce_vault_network": True})  # runner outside the VNet
    address = "key_vault_secret/langfuse-minio-password"
    _, result = _apply(engine, [address])
    assert result.get(address).outcome is Outcome.CREATED
    log = _requests(emu)
    assert any(
        r["plane"] == "keyvault" and r["status"] == 403 for r in log
    )  # tried the data plane first
    assert any(
        r["method"] == "PUT" and r["path"].endswith("/secrets/langfuse-minio-password")
        for r in log
        if r["plane"] == "arm"
    )
    assert re.fullmatch(r"[A-Za-z0-9]{32}", _value(emu, "langfuse-minio-password"))

    assert state.secrets is not None
    data_only = state.model_copy(
        update={"secrets": state.secrets.model_copy(update={"write_path": "data_plane"})}
    )
    target = "key_vault_secret/langfuse-clickhouse-password"
    only = Engine(data_only, Clients(AzureTarget.for_emulator(emu.info["arm"])))
    failed = only.apply(only.plan(targets=[target])).get(target)
    assert failed.outcome is Outcome.FAILED
    assert "403" in (failed.detail or "")


def test_missing_environment_variable_is_named_never_valued(
    emu: Emulator, engine: Callable[..., Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DESIRED_STATE.read_text(encoding="utf-8").replace(
        "    - name: databricks-agent-token\n",
        "    - name: smoke-test-token\n      source: {env: NSC_SMOKE_TOKEN}\n"
        "    - name: databricks-agent-token\n",
    )
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    desired = load_desired_state(path)
    address = "key_vault_secret/smoke-test-token"
    monkeypatch.delenv("NSC_SMOKE_TOKEN", raising=False)
    plan = engine(desired).plan(targets=[address])
    assert plan.get(address).action is Action.BLOCKED
    assert "NSC_SMOKE_TOKEN is not set" in (plan.get(address).reason or "")

    monkeypatch.setenv("NSC_SMOKE_TOKEN", "dapi0123456789abcdef0123456789abcdef")
    plan = engine(desired).plan(targets=[address])
    assert plan.get(address).action is Action.CREATE
    result = engine(desired).apply(plan)
    assert result.get(address).outcome is Outcome.CREATED
    assert _value(emu, "smoke-test-token") == "dapi0123456789abcdef0123456789abcdef"
    assert "dapi0123" not in plan.render("json") + result.render("json")


def test_no_secret_value_in_plans_results_or_logs(
    emu: Emulator,
    engine: Callable[..., Engine],
    vault_client: SecretClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, first = _apply(engine, SECRET_TARGETS)
    vault_client.set_secret("azure-openai-api-key", "rotated-by-hand-0123456789")
    emu.world.secrets.delete(KEY_VAULT_NAME, "langfuse-salt")
    plan = _plan(engine, SECRET_TARGETS)  # the key set by hand is no longer ours: blocked
    applicable = [t for t in SECRET_TARGETS if plan.get(t).action is not Action.BLOCKED]
    second = engine().apply(_plan(engine, applicable))
    runner = CliRunner()
    cli_plan = runner.invoke(
        _cli(),
        ["plan", str(DESIRED_STATE), "--format", "json", "--emulator", emu.info["arm"]]
        + [arg for t in SECRET_TARGETS for arg in ("--target", t)],
    )
    assert cli_plan.exit_code in (0, 2), cli_plan.output
    json.loads(cli_plan.stdout)  # the machine-readable plan parses

    values = {
        str(v["value"])
        for name in SECRETS
        for v in emu.world.secrets.versions(KEY_VAULT_NAME, name)
        # settings declared `sensitive: false` are shown on purpose
        if name not in ("agent-execute-mode", "azure-openai-deployment", "azure-openai-endpoint")
    } | {"rotated-by-hand-0123456789", DATABRICKS_TOKEN_VALUE}
    assert len(values) >= 11
    text = "\n".join(
        [
            first.render("json"),
            plan.render("json"),
            plan.render("text"),
            plan.render("markdown"),
            second.render("json"),
            cli_plan.output,
            caplog.text,
        ]
    )
    leaked = [v[:4] + "..." for v in values if v in text]
    assert leaked == []


def _cli() -> Any:
    from nsc_reconcile.cli import cli

    return cli
