"""Checks of Key Vault (seed §3.5 / §6): every required key exists, enabled and tagged, and
``agent-execute-mode`` follows the environment rule. Never returns a secret value.
"""

from __future__ import annotations

from typing import Any

from nsc_reconcile.resources.base import MANAGED_BY_TAG, MANAGED_BY_VALUE, to_wire
from nsc_reconcile.verification.context import Run, make_check, props_of, rg_of
from nsc_reconcile.verification.results import Check

EXECUTE_MODE_KEY = "agent-execute-mode"


def _vault_secrets(run: Run) -> tuple[str, dict[str, dict[str, Any]]]:
    """(vault id, secret name -> ARM wire) through the ARM control plane (works with a
    private data plane; never returns values)."""
    if "vault" not in run.cache:
        assert run.state.secrets is not None
        vault = run.state.secrets.vault
        vault_id = run.id_of(f"key_vault/{vault}")
        listing = run.clients.keyvault_mgmt.secrets.list(rg_of(vault_id), vault)
        found = {str(w.get("name")): w for w in (to_wire(s) for s in listing)}
        run.cache["vault"] = (vault_id, found)
    result: tuple[str, dict[str, dict[str, Any]]] = run.cache["vault"]
    return result


def check_key_vault_secrets(run: Run) -> Check:
    """Seed §3.5 / §6: every required key exists (enabled) in Key Vault, carrying the
    managed-by tag where this tool manages it."""
    assert run.state.secrets is not None
    vault = run.state.secrets.vault
    check_id = f"key-vault-secrets/{vault}"
    title = f"Key Vault {vault} holds every required key"
    if run.live(f"key_vault/{vault}") is None:
        return make_check(check_id, title, [], [f"Key Vault {vault} does not exist"])
    vault_id, found = _vault_secrets(run)
    items = run.state.secrets.items
    present, missing, disabled, unmanaged, external = [], [], [], [], []
    for item in items:
        wire = found.get(item.name)
        if wire is None:
            missing.append(item.name)
            continue
        present.append(item.name)
        attributes = props_of(wire).get("attributes") or {}
        if attributes.get("enabled") is False:
            disabled.append(item.name)
        if item.source is not None and item.source.external:
            external.append(item.name)
        elif (wire.get("tags") or {}).get(MANAGED_BY_TAG) != MANAGED_BY_VALUE:
            unmanaged.append(item.name)
    evidence = [
        f"vault id={vault_id}",
        f"{len(present)}/{len(items)} present (ARM control-plane list): " + ", ".join(present),
        f"{MANAGED_BY_TAG}={MANAGED_BY_VALUE} on {len(present) - len(unmanaged) - len(external)}",
    ]
    if external:
        evidence.append("external (not managed here, existence only): " + ", ".join(external))
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if disabled:
        problems.append("disabled: " + ", ".join(disabled))
    if unmanaged:
        problems.append(f"without {MANAGED_BY_TAG}={MANAGED_BY_VALUE}: " + ", ".join(unmanaged))
    return make_check(check_id, title, evidence, problems)


def check_execute_mode(run: Run) -> Check:
    """Seed §3.5: ``agent-execute-mode`` is ``dry-run`` in dev/staging and ``live`` in prod
    (the value is a non-secret setting: read from its value tag, verified against the current
    version, else from the data plane)."""
    assert run.state.secrets is not None
    env = run.state.environment
    rule = "live" if env == "prod" else "dry-run"
    check_id = f"execute-mode/{EXECUTE_MODE_KEY}"
    title = f"{EXECUTE_MODE_KEY} is {rule} in {env}"
    declared = next((i for i in run.state.secrets.items if i.name == EXECUTE_MODE_KEY), None)
    if declared is None:
        return make_check(check_id, title, [], [f"{EXECUTE_MODE_KEY} is not declared"])
    if run.live(f"key_vault/{run.state.secrets.vault}") is None:
        return make_check(check_id, title, [], [f"Key Vault {run.state.secrets.vault} not found"])
    _, found = _vault_secrets(run)
    wire = found.get(EXECUTE_MODE_KEY)
    if wire is None:
        return make_check(
            check_id, title, [f"declared {declared.value}"], ["the secret is missing"]
        )
    value, how = _execute_mode_value(run, wire)
    evidence = [f"live value {value!r} ({how})", f"declared {declared.value!r}",
                f"environment {env}"]  # fmt: skip
    problems = []
    if value != rule:
        problems.append(f"value is {value!r}, the {env} rule is {rule!r}")
    if declared.value != rule:
        problems.append(f"the desired state declares {declared.value!r}")
    return make_check(check_id, title, evidence, problems)


def _execute_mode_value(run: Run, wire: dict[str, Any]) -> tuple[str | None, str]:
    from nsc_reconcile.resources.secrets import VALUE_TAG, VERSION_TAG

    tags = wire.get("tags") or {}
    uri = str(props_of(wire).get("secretUriWithVersion") or "")
    current = uri.rstrip("/").rsplit("/", 1)[-1] if uri else None
    pinned = tags.get(VERSION_TAG)
    if VALUE_TAG in tags and pinned and current and pinned.lower() == current.lower():
        return str(tags[VALUE_TAG]), f"tag {VALUE_TAG} of version {current}"
    assert run.state.secrets is not None
    vault = run.live(f"key_vault/{run.state.secrets.vault}")
    try:
        assert vault is not None
        client = run.clients.secret_client(str(vault.fields.get("properties.vaultUri")))
        return client.get_secret(EXECUTE_MODE_KEY).value, "read from the data plane"
    except Exception as error:
        return None, f"not confirmed: no verified value tag, data plane: {type(error).__name__}"
