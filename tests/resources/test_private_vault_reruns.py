"""A private Key Vault (public network access Disabled, the seed's nsc-kv-dev) seen from outside
its VNet (the emulator's ``enforce_vault_network``): plans and verify compare Key Vault versions
and keyed tags, never values, so reruns work from anywhere; values are read only to write them.
Also: the keyed value tag (no offline guessing), generated once across a failed pin, and every
secret value the run handles kept out of what is printed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from kubernetes import client as k8s

from nsc_reconcile import apply, load_desired_state, plan
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME, RESOURCE_GROUP
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.resources.langfuse_manifests import VERSIONS_ANNOTATION
from nsc_reconcile.resources.secrets import LEGACY_TAG, MAC_TAG, VERSION_TAG
from nsc_reconcile.resources.vault_mac import MAC_KEY_SECRET
from nsc_reconcile.retry import RetryPolicy
from tests.conftest import run_cli, state_with_webhook
from tests.paths import DESIRED_STATE

Ctl = Callable[..., Any]
OUTSIDE = {"enforce_vault_network": True}  # a runner outside the vault's VNet
INSIDE = {"enforce_vault_network": False}
API_KEY = "azure-openai-api-key"
SALT = "langfuse-salt"
FAST = RetryPolicy(attempts=4, initial_wait_s=0.01, max_wait_s=0.05)


@pytest.fixture
def arm(emu: Emulator, ctl: Ctl) -> str:
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    return str(emu.info["arm"])


def _apply_all(capsys: pytest.CaptureFixture[str], arm: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    return code, out + err


def _versions(emu: Emulator, name: str) -> list[dict[str, Any]]:
    return emu.world.secrets.versions(KEY_VAULT_NAME, name)


def _vault_requests(ctl: Ctl) -> list[str]:
    return [
        f"{r['method']} {r['path']} {r['status']}"
        for r in ctl("GET", "requests")
        if r["plane"] == "keyvault"
    ]


def _engine(emu: Emulator, state: DesiredState | None = None) -> Engine:
    clients = Clients(AzureTarget.for_emulator(str(emu.info["arm"]), retry_total=0))
    return Engine(state or load_desired_state(DESIRED_STATE), clients, retry=FAST)


# ------------------------------------------------------------------ item 1: reruns outside
@pytest.mark.parametrize("first_apply", ["inside", "outside"])
def test_second_plan_and_verify_from_outside_the_vnet_are_clean(
    capsys: pytest.CaptureFixture[str], arm: str, ctl: Ctl, first_apply: str
) -> None:
    ctl("POST", "config", INSIDE if first_apply == "inside" else OUTSIDE)
    code, output = _apply_all(capsys, arm)
    assert code == 0, output

    ctl("POST", "config", OUTSIDE)
    ctl("DELETE", "requests")
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 0, out + err
    assert "No changes." in out
    assert f"{API_KEY}: value compared by version only" in out  # what needs the VNet
    # No secret value was read: the one data-plane call is the refused read of the MAC key.
    assert _vault_requests(ctl) == [f"GET /secrets/{MAC_KEY_SECRET}/ 403"]

    code, out, err = run_cli(capsys, "verify", str(DESIRED_STATE), "--emulator", arm)
    assert code == 0, out + err
    plan_clean = next(line for line in out.splitlines() if "plan-clean" in line)
    assert "PASS" in plan_clean, out


def test_a_rotated_secret_is_seen_from_outside_and_written_from_inside(
    capsys: pytest.CaptureFixture[str],
    arm: str,
    emu: Emulator,
    ctl: Ctl,
    vault_client: SecretClient,
    kube: k8s.ApiClient,
) -> None:
    assert _apply_all(capsys, arm)[0] == 0
    tags = _versions(emu, SALT)[-1]["tags"]
    rotated = vault_client.set_secret(SALT, "rotated-salt-0123456789abcdefABCDEF", tags=tags)

    ctl("POST", "config", OUTSIDE)
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode", "--verbose"
    )
    assert code == 2, out + err
    assert "~ update    kubernetes_workload/langfuse" in out
    assert VERSIONS_ANNOTATION in out
    assert str(rotated.properties.version) in out
    assert "reads its values from Key Vault nsc-kv-dev, whose data plane is private" in out

    code, output = _apply_all(capsys, arm)  # from outside: the value cannot be read
    assert code == 1
    assert "cannot read Key Vault secret" in output
    assert "HTTP 403 ForbiddenByConnection" in output
    assert "rotated-salt" not in output

    ctl("POST", "config", INSIDE)
    assert _apply_all(capsys, arm)[0] == 0
    data: Any = k8s.CoreV1Api(kube).read_namespaced_secret("langfuse-secrets", "langfuse").data
    assert base64.b64decode(data["SALT"]).decode() == "rotated-salt-0123456789abcdefABCDEF"
    ctl("POST", "config", OUTSIDE)
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 0, out + err


# ------------------------------------------------------------------ item 17: keyed tag
def test_value_tags_are_keyed_and_the_unkeyed_hash_is_gone(
    capsys: pytest.CaptureFixture[str], arm: str, emu: Emulator
) -> None:
    assert _apply_all(capsys, arm)[0] == 0
    names = [r["name"] for r in emu.world.secrets.list(KEY_VAULT_NAME)]
    assert all(LEGACY_TAG not in (_versions(emu, n)[-1].get("tags") or {}) for n in names)

    value = str(_versions(emu, API_KEY)[-1]["value"])
    tag = _versions(emu, API_KEY)[-1]["tags"][MAC_TAG]
    # Someone with Reader sees the tag; without the key a guess cannot be tested against it.
    unkeyed = [
        hashlib.sha256(f"nsc-reconcile:{API_KEY}:{value}".encode()).hexdigest(),
        hashlib.sha256(value.encode()).hexdigest(),
    ]
    assert tag not in unkeyed
    keys = _versions(emu, MAC_KEY_SECRET)
    assert len(keys) == 1  # generated once, kept in the same vault
    message = f"nsc-reconcile:{API_KEY}:{value}".encode()
    assert tag == hmac.new(str(keys[0]["value"]).encode(), message, hashlib.sha256).hexdigest()


def _to_old_scheme(emu: Emulator, vault_client: SecretClient) -> str:
    """The API key as an earlier version of this tool left it: the unkeyed hash tag."""
    record = _versions(emu, API_KEY)[-1]
    tags = {k: v for k, v in record["tags"].items() if k != MAC_TAG}
    old = hashlib.sha256(f"nsc-reconcile:{API_KEY}:{record['value']}".encode()).hexdigest()
    vault_client.update_secret_properties(
        API_KEY, record["version"], tags={**tags, LEGACY_TAG: old}
    )
    return str(record["version"])


def test_the_unkeyed_tag_migrates_once_without_a_new_version(
    capsys: pytest.CaptureFixture[str], arm: str, emu: Emulator, vault_client: SecretClient
) -> None:
    assert _apply_all(capsys, arm)[0] == 0
    version = _to_old_scheme(emu, vault_client)

    planned = _engine(emu).plan(targets=[f"key_vault_secret/{API_KEY}"])
    secret = planned.get(f"key_vault_secret/{API_KEY}")
    assert secret.action is Action.UPDATE
    assert [(c.path, c.after) for c in secret.changes] == [
        (f"tags.{MAC_TAG}", "(sensitive)"),
        (f"tags.{LEGACY_TAG}", None),
    ]
    assert all(len(str(c.before or "")) != 64 for c in secret.changes)  # the hash not shown
    result = _engine(emu).apply(planned)
    assert result.get(f"key_vault_secret/{API_KEY}").outcome is Outcome.UPDATED
    after = _versions(emu, API_KEY)
    assert [v["version"] for v in after][-1] == version  # tags only: no new version
    assert LEGACY_TAG not in after[-1]["tags"]
    assert MAC_TAG in after[-1]["tags"]
    again = _engine(emu).plan(targets=[f"key_vault_secret/{API_KEY}"])
    assert again.get(f"key_vault_secret/{API_KEY}").action is Action.UNCHANGED


def test_outside_the_vnet_the_unkeyed_tag_is_removed_and_the_key_added_later_inside(
    capsys: pytest.CaptureFixture[str],
    arm: str,
    emu: Emulator,
    ctl: Ctl,
    vault_client: SecretClient,
) -> None:
    assert _apply_all(capsys, arm)[0] == 0
    version = _to_old_scheme(emu, vault_client)
    address = f"key_vault_secret/{API_KEY}"

    ctl("POST", "config", OUTSIDE)  # the MAC key exists but cannot be read from here
    planned = _engine(emu).plan(targets=[address])
    assert [(c.path, c.after) for c in planned.get(address).changes] == [
        (f"tags.{LEGACY_TAG}", None)
    ]
    assert _engine(emu).apply(planned).ok
    tags = _versions(emu, API_KEY)[-1]["tags"]
    assert LEGACY_TAG not in tags
    assert MAC_TAG not in tags
    assert _engine(emu).plan(targets=[address]).get(address).action is Action.UNCHANGED

    ctl("POST", "config", INSIDE)  # inside: the value is compared, the keyed tag added
    planned = _engine(emu).plan(targets=[address])
    assert [c.path for c in planned.get(address).changes] == [f"tags.{MAC_TAG}"]
    assert _engine(emu).apply(planned).ok
    assert [v["version"] for v in _versions(emu, API_KEY)][-1] == version
    assert MAC_TAG in _versions(emu, API_KEY)[-1]["tags"]
    assert len(_versions(emu, MAC_KEY_SECRET)) == 1  # the key was never made twice
    assert _engine(emu).plan(targets=[address]).get(address).action is Action.UNCHANGED


# ------------------------------------------------------------ 9b: a failed pin, generated once
@pytest.mark.parametrize(
    ("plane", "path"),
    [
        ("data plane", f"^/secrets/{SALT}/[0-9a-f]+$"),
        ("control plane", f"/vaults/{KEY_VAULT_NAME}/secrets/{SALT}$"),
    ],
)
def test_a_failed_pin_after_a_generated_value_does_not_generate_another(
    emu: Emulator, ctl: Ctl, plane: str, path: str
) -> None:
    if plane == "control plane":
        ctl("POST", "config", OUTSIDE)  # the data plane refuses: written through ARM
    ctl("POST", "faults", [{"method": "PATCH", "path": path, "status": 409, "code": "Conflict",
                            "message": "The request conflicts with another", "count": 1}])  # fmt: skip
    address = f"key_vault_secret/{SALT}"
    result = _engine(emu).apply(_engine(emu).plan(targets=[address]))
    if not result.ok:  # the run gave up on the 409: the rerun must not generate again
        result = _engine(emu).apply(_engine(emu).plan(targets=[address]))
    assert result.ok, result.render()
    assert next(r["status"] for r in ctl("GET", "requests") if r["method"] == "PATCH") == 409

    versions = _versions(emu, SALT)
    assert len(versions) == 1  # value A only, never a value B
    first_set = next(
        r["request_body"]
        for r in ctl("GET", "requests")
        if r["method"] == "PUT" and SALT in r["path"] and r["status"] in (200, 201)
    )
    sent = first_set.get("value") or first_set["properties"]["value"]
    assert versions[0]["value"] == sent  # the value did not change
    assert versions[0]["tags"][VERSION_TAG] == versions[0]["version"]  # pinned in the end
    again = _engine(emu).plan(targets=[address])
    assert again.get(address).action is Action.UNCHANGED


# ------------------------------------------------------------------ item 16: redaction
def _outputs(result: Any, planned: Any, caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        [
            result.render("text"),
            result.render("json"),
            planned.render("json"),
            *(r.getMessage() for r in caplog.records),
        ]
    )


def test_a_webhook_uri_echoed_by_an_error_is_redacted(
    emu: Emulator, ctl: Ctl, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uri = "https://prod-00.koreacentral.logic.azure.com/workflows/abc?sig=Zq81TokenXyZ7788"
    clients = Clients(AzureTarget.for_emulator(str(emu.info["arm"]), retry_total=0))
    from azure.mgmt.keyvault.models import SecretCreateOrUpdateParameters, SecretProperties

    clients.keyvault_mgmt.secrets.create_or_update(
        RESOURCE_GROUP, KEY_VAULT_NAME, "teams-webhook-uri",
        SecretCreateOrUpdateParameters(properties=SecretProperties(value=uri)),
    )  # fmt: skip
    ctl("POST", "faults", [{"method": "PUT", "path": "/actionGroups/", "status": 400,
                            "code": "BadRequest", "message": f"webhook {uri} is not reachable",
                            "count": 5}])  # fmt: skip
    state = state_with_webhook(tmp_path)
    address = "action_group/nsc-ag-agent-dev"
    planned = plan(state, clients, targets=[address])
    result = apply(planned, state, clients)
    failed = result.get(address)
    assert failed.outcome is Outcome.FAILED
    assert "webhook (sensitive) is not reachable" in (failed.detail or "")
    assert uri not in _outputs(result, planned, caplog)


def test_the_postgres_admin_password_echoed_by_an_error_is_redacted(
    emu: Emulator, ctl: Ctl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state = load_desired_state(DESIRED_STATE)
    secret_only = _engine(emu, state)
    secret = "key_vault_secret/langfuse-pg-admin-password"
    assert secret_only.apply(secret_only.plan(targets=[secret])).ok  # an earlier run
    password = str(_versions(emu, "langfuse-pg-admin-password")[-1]["value"])
    ctl("POST", "faults", [{"method": "PUT", "path": "/flexibleServers/nsc-pg-langfuse-dev$",
                            "status": 400, "code": "InvalidParameterValue",
                            "message": f"password '{password}' is not allowed", "count": 5}])  # fmt: skip
    engine = _engine(emu, state)  # a new run: the password is read from the vault
    address = "postgresql_server/nsc-pg-langfuse-dev"
    planned = engine.plan(targets=[address])
    result = engine.apply(planned)
    failed = result.get(address)
    assert failed.outcome is Outcome.FAILED
    assert "password '(sensitive)' is not allowed" in (failed.detail or "")
    assert password not in _outputs(result, planned, caplog)


def test_an_unexpected_error_quoting_a_secret_is_printed_redacted(
    capsys: pytest.CaptureFixture[str],
    arm: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = "Qv7-env-token-Lm4Np8Rs2Tu6Wx0Yz"
    monkeypatch.setenv("NSC_TEST_TOKEN", value)
    text = DESIRED_STATE.read_text(encoding="utf-8").replace(
        "    - name: databricks-agent-token\n      source: {external: true}",
        "    - name: databricks-agent-token\n      source: {external: true}\n"
        "    - name: teams-webhook-token\n      source: {env: NSC_TEST_TOKEN}",
    )
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    from nsc_reconcile.plans import Plan

    def broken(*_: Any, **__: Any) -> str:  # a bug that quotes a value it holds
        raise RuntimeError(f"cannot render {value!r}")

    monkeypatch.setattr(Plan, "render", broken)
    target = ("--target", "key_vault_secret/teams-webhook-token")
    for debug in ([], ["--debug"]):
        code, out, err = run_cli(capsys, *debug, "plan", str(path), "--emulator", arm, *target)
        assert code == 1
        assert "RuntimeError" in err
        assert "(sensitive)" in err
        assert value not in out + err
    assert json.dumps(value) not in err


def test_a_write_retried_from_the_same_snapshot_sets_no_second_value(
    emu: Emulator, ctl: Ctl
) -> None:
    # The reconciler's own contract, whatever the engine re-reads: a retry of a write whose
    # pin failed (the snapshot still says "absent") pins the value set, never makes another.
    from azure.core.exceptions import HttpResponseError

    from nsc_reconcile.resources import reconciler_for

    engine = _engine(emu)
    address = f"key_vault_secret/{SALT}"
    engine.plan(targets=[address])
    resource = engine.graph.nodes[address]
    ctl("POST", "faults", [{"method": "PATCH", "path": f"^/secrets/{SALT}/", "status": 409,
                            "code": "Conflict", "message": "conflict", "count": 1}])  # fmt: skip
    with pytest.raises(HttpResponseError):
        reconciler_for(resource).write(engine.context, resource, None)
    reconciler_for(resource).write(engine.context, resource, None)
    versions = _versions(emu, SALT)
    assert len(versions) == 1
    assert versions[0]["tags"][VERSION_TAG] == versions[0]["version"]


def test_webhook_receivers_are_compared_from_outside_without_reading_the_uri(
    emu: Emulator, ctl: Ctl, tmp_path: Path
) -> None:
    state = state_with_webhook(tmp_path)
    uri = "https://prod-00.koreacentral.logic.azure.com/workflows/abc?sig=Hk3TokenQw9Er5Ty"
    clients = Clients(AzureTarget.for_emulator(str(emu.info["arm"])))
    from azure.mgmt.keyvault.models import SecretCreateOrUpdateParameters, SecretProperties

    def set_uri(value: str) -> None:  # as an operator would, through ARM
        clients.keyvault_mgmt.secrets.create_or_update(
            RESOURCE_GROUP, KEY_VAULT_NAME, "teams-webhook-uri",
            SecretCreateOrUpdateParameters(properties=SecretProperties(value=value)),
        )  # fmt: skip

    set_uri(uri)
    address = "action_group/nsc-ag-agent-dev"
    assert _engine(emu, state).apply(_engine(emu, state).plan(targets=[address])).ok

    ctl("POST", "config", OUTSIDE)
    ctl("DELETE", "requests")
    assert _engine(emu, state).plan(targets=[address]).get(address).action is Action.UNCHANGED
    assert _vault_requests(ctl) == []  # nothing read from the vault's data plane

    set_uri(uri.replace("Hk3Token", "Zz9Token"))  # rotated: a new version, seen from outside
    planned = _engine(emu, state).plan(targets=[address])
    group = planned.get(address)
    assert group.action is Action.UPDATE
    assert any("run apply inside the vault's VNet" in note for note in group.notes)
    assert "Zz9Token" not in planned.render("json")


def test_a_value_is_redacted_in_the_forms_an_echo_takes() -> None:
    import urllib.parse

    from nsc_reconcile.redaction import Redactor

    uri = "https://hooks.example.com/a/b?sig=Tk7Zq81Xy"
    redactor = Redactor()
    redactor.add(uri)
    forms = [
        json.dumps(uri)[1:-1].replace("/", "\\/"),  # in JSON with escaped slashes
        urllib.parse.quote(uri, safe=""),  # URL-encoded
        base64.b64encode(uri.encode()).decode(),  # a Kubernetes Secret's data
    ]
    for form in forms:
        assert redactor.redact(f"error: {form} refused") == "error: (sensitive) refused"
