"""Credential rotation (seed §9, ``rotate FILE KEY...``): each key's rotation is a list of named
steps computed first (a dry run prints them and writes nothing), then run in order, each
reporting its outcome; the first failure stops the run with the state things are in and how to
finish by hand. Writes go through the reconcilers (Key Vault bookkeeping, the LangFuse Secret),
so the next plan shows no change. With ``secrets_delivery: csi`` the tool writes no Secret: the
readers' rollout restart makes the CSI driver fetch the new version as their pods mount, and
the rollout is awaited. No value is ever shown.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from nsc_reconcile.model.openai import OpenAIAccount
from nsc_reconcile.model.postgres import PostgresqlServer
from nsc_reconcile.model.secrets import Generate, KeyVaultSecret, parse_output_ref
from nsc_reconcile.model.workload import Langfuse
from nsc_reconcile.resources import reconciler_for
from nsc_reconcile.resources.langfuse_manifests import (
    provider_class_name,
    secret_consumers,
    secret_keys,
    secret_name,
    uses_csi,
)
from nsc_reconcile.resources.openai import OpenAIAccountReconciler
from nsc_reconcile.resources.postgres import PostgresqlServerReconciler
from nsc_reconcile.resources.secrets import KeyVaultSecretReconciler, SecretSourceError
from nsc_reconcile.resources.vault_writer import generate
from nsc_reconcile.resources.workload import LangfuseReconciler
from nsc_reconcile.retry import call_with_retry, describe_error

if TYPE_CHECKING:
    from nsc_reconcile.engine import Engine

# How long a csi rotation waits for the restarted readers (seconds; kubectl rollout status has
# no limit by default, the retry policy's patience bounds it when shorter).
ROLLOUT_WAIT_S = 300.0

__all__ = ["Rotation", "RotationError", "RotationResult", "Step", "StepResult", "plan_rotations"]

# What a new value of a LangFuse setting does beyond a restart (langfuse.com self-hosting docs,
# configuration page): Secret key -> warning shown with the steps.
_LANGFUSE_EFFECTS = {
    "ENCRYPTION_KEY": "LangFuse encrypts stored credentials (e.g. LLM API keys) with it: those "
    "stored before cannot be decrypted afterwards and must be entered again",
    "SALT": "LangFuse hashes its API keys with it: existing LangFuse API keys stop working",
    "NEXTAUTH_SECRET": "LangFuse signs login sessions with it: users sign in again",
    "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": "read only when LangFuse first initializes its project: "
    "the project's keys stored in LangFuse do not change",
    "LANGFUSE_INIT_PROJECT_SECRET_KEY": "read only when LangFuse first initializes its project: "
    "the project's keys stored in LangFuse do not change",
}


class RotationError(Exception):
    """A rotation that cannot start (an unknown key, or one this tool must not rotate); the
    message says why and what a person can do. Nothing was written."""


class StepFailedError(Exception):
    """A step found something wrong (not an SDK error); the message names it, never a value."""


@dataclass
class Step:
    """One named step: ``run`` does it and returns its outcome in a few words (never a value);
    ``if_failed`` says what state things are in when it fails, and how to finish by hand."""

    title: str
    run: Callable[[], str]
    if_failed: str


@dataclass
class Rotation:
    """The steps rotating one Key Vault secret, and warnings to read before running them."""

    key: str
    source: str
    steps: list[Step]
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"rotate {self.key} ({self.source}):"]
        lines += [f"  {n}. {step.title}" for n, step in enumerate(self.steps, 1)]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class StepResult:
    """How one step ended: ``outcome`` on success, else the failure and ``if_failed``."""

    key: str
    number: int
    total: int
    title: str
    ok: bool
    outcome: str
    if_failed: str = ""


@dataclass
class RotationResult:
    """Every step run, in order; the last one failed when ``ok`` is False."""

    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


class _NewValue:
    """A new credential between steps: in memory only, registered for redaction."""

    def __init__(self) -> None:
        self._value: str | None = None

    def set(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        if self._value is None:
            raise StepFailedError("no new value was made by an earlier step")
        return self._value


# --------------------------------------------------------------------------- planning
def plan_rotations(engine: Engine, names: Sequence[str]) -> list[Rotation]:
    """The steps rotating each of ``names`` (Key Vault secret names of the desired state), in
    order. Reads live state (to refuse early and name the key in use), never writes. Raises
    RotationError listing every key that cannot be rotated, and why."""
    state = engine.state
    items = {item.name: item for item in state.secrets.items} if state.secrets else {}
    problems: list[str] = []
    rotations: list[Rotation] = []
    for name in dict.fromkeys(names):
        item = items.get(name)
        if item is None:
            declared = ", ".join(items) or "none"
            problems.append(f"no Key Vault secret named {name} in the desired state; declared: "
                            f"{declared}")  # fmt: skip
            continue
        try:
            rotations.append(_plan_one(engine, item))
        except (RotationError, SecretSourceError) as error:
            problems.append(str(error))
    if problems:
        raise RotationError("\n".join(problems))
    return rotations


def _plan_one(engine: Engine, item: KeyVaultSecret) -> Rotation:
    source = item.source
    if not item.sensitive or source is None:
        raise RotationError(
            f"{item.name} is not a credential (`sensitive: false`): nothing to rotate; change "
            "it in the desired state and run apply"
        )
    if source.external:
        raise RotationError(_external_steps(engine, item))
    if source.env is not None:
        raise RotationError(
            f"{item.name} comes from environment variable {source.env} at apply time: get a "
            f"new value where it is issued, set it in {source.env} and run apply (it writes "
            "Key Vault), restart what reads it, then revoke the old value where it was issued"
        )
    if source.generate is not None:
        return _generated(engine, item, source.generate)
    account = _account_of(item)
    if account is not None:
        return _openai_key(engine, item, account)
    raise RotationError(
        f"{item.name} holds output {source.output}: this tool rotates generated values and "
        "OpenAI account keys only"
    )


def _external_steps(engine: Engine, item: KeyVaultSecret) -> str:
    vault = _vault(engine)
    return (
        f"{item.name} is an external secret (`source: external`): nsc-reconcile never writes "
        "it, so it cannot rotate it. A person must:\n"
        "  1. create a new token where it is issued (a Databricks token: the workspace's "
        "Settings > Developer > Access tokens, or `databricks tokens create --comment "
        f"{item.name} --lifetime-seconds SECONDS -o json | jq -j .token_value > TOKEN_FILE`, "
        "Databricks CLI 0.205+);\n"
        "  2. set it in Key Vault from that file, never on the command line: `az keyvault "
        f"secret set --vault-name {vault} --name {item.name} --file TOKEN_FILE` (inside the "
        "vault's VNet when its data plane is private), then delete the file;\n"
        "  3. restart what reads it, then revoke the old token: `databricks tokens delete "
        "OLD_TOKEN_ID` (ids: `databricks tokens list`) or the Access tokens page;\n"
        f"  4. run `verify FILE` (its check key-vault-secrets/{vault} finds the key)"
    )


def _account_of(item: KeyVaultSecret) -> str | None:
    """The OpenAI account whose key ``item`` holds (``primary_key``/``secondary_key``)."""
    parsed = parse_output_ref(item.source.output or "") if item.source else None
    if parsed is None or parsed[0] != "openai_account" or not parsed[2].endswith("_key"):
        return None
    return parsed[1]


def _vault(engine: Engine) -> str:
    assert engine.state.secrets is not None
    return engine.state.secrets.vault


def _secret_reconciler(item: KeyVaultSecret) -> KeyVaultSecretReconciler:
    found = reconciler_for(item)
    assert isinstance(found, KeyVaultSecretReconciler)
    return found


def _require_live(engine: Engine, address: str, why: str) -> None:
    if engine.context.live(address) is None:
        raise RotationError(f"{address} does not exist: {why}")


def _generated(engine: Engine, item: KeyVaultSecret, spec: Generate) -> Rotation:
    """New value; the servers whose admin password it is first, then Key Vault, then the
    LangFuse Secret and its readers, then the PostgreSQL smoke."""
    vault = _vault(engine)
    _require_live(engine, item.address, "apply creates it (generated once); nothing to rotate")
    servers = [
        s for s in engine.state.postgresql_servers if s.admin_password.key_vault_secret == item.name
    ]
    for server in servers:
        _require_live(engine, server.address, f"its admin password is {item.name}; apply first")
    value = _NewValue()
    prefix = f", prefix {spec.prefix}" if spec.prefix else ""
    described = f"{spec.length} {spec.alphabet} characters{prefix}"
    steps = [
        Step(
            f"generate a new value ({described}), kept in memory only",
            partial(_make_value, engine, spec, value),
            "nothing was written: run rotate again",
        )
    ]
    rerun = f"`rotate {item.name} --yes` again"
    for server in servers:
        steps.append(
            Step(
                f"set the admin password of postgresql_server/{server.name} (PATCH "
                "administratorLoginPassword: the old password stops working)",
                partial(_set_password, engine, server, value),
                f"the server may already have the new password while Key Vault {vault} holds "
                "the old one (new LangFuse connections fail); the new value was never shown: "
                f"run {rerun} (it sets another new password first)",
            )
        )
    before = (
        f"the server has the new password, Key Vault {vault} may still hold the old one: new "
        "LangFuse connections fail until this is finished. The new value was never shown: run "
        f"{rerun} (it sets another new password on the server, then writes Key Vault)"
        if servers
        else f"Key Vault {vault} still holds the old value; nothing else changed: run {rerun}"
    )
    steps.append(_vault_step(engine, item, value, before))
    warnings: list[str] = []
    langfuse = engine.state.langfuse
    workload = _workload_steps(engine, langfuse, item) if langfuse is not None else []
    steps += workload
    if workload or servers:  # the Secret and the smoke read values: refuse now, not midway
        _require_data_plane(engine, item, "to fill the LangFuse Secret and run the smoke")
    if langfuse is not None:
        for key, source in secret_keys(langfuse).items():
            if source == item.name and key in _LANGFUSE_EFFECTS:
                warnings.append(f"{item.name} is LangFuse's {key}: {_LANGFUSE_EFFECTS[key]}")
    if servers:
        steps.append(
            Step(
                "run the PostgreSQL smoke (log in with the new password from Key Vault)",
                partial(_postgres_smoke, engine),
                "the rotation is done, but the smoke failed (see above): run `verify FILE "
                "--smoke=postgres` for the evidence",
            )
        )
    return Rotation(item.name, f"generated: {described}", steps, warnings)


def _require_data_plane(engine: Engine, item: KeyVaultSecret, why: str) -> None:
    """Raise RotationError, before anything is written, when Key Vault's data plane cannot be
    read from here (a private vault from outside its VNet): the rotation reads values."""
    try:
        _secret_reconciler(item).current_value(engine.context, item)
    except SecretSourceError as error:
        raise RotationError(
            f"{item.name}: the rotation reads Key Vault values {why}, and {error}; nothing "
            "was written"
        ) from None


def _vault_step(engine: Engine, item: KeyVaultSecret, value: _NewValue, if_failed: str) -> Step:
    return Step(
        f"write Key Vault secret {item.name} in {_vault(engine)} (a new version, with the "
        "tags apply gives it)",
        partial(_write_vault, engine, item, value),
        if_failed,
    )


def _workload_steps(
    engine: Engine, langfuse: Langfuse, item: KeyVaultSecret, then: str = ""
) -> list[Step]:
    """Update the LangFuse Secret and restart what reads the key (none when it reads none);
    ``then``: what is left to do by hand after either fails."""
    if item.name not in secret_keys(langfuse).values():
        return []
    ns, secret = langfuse.namespace, secret_name(langfuse)
    readers = secret_consumers(langfuse, item.name)
    shown = ", ".join(f"{kind} {ns}/{name}" for kind, name in readers)
    kubectl = " ".join(f"{kind.lower()}/{name}" for kind, name in readers)
    restart = f"`kubectl -n {ns} rollout restart {kubectl}`"
    if uses_csi(langfuse):
        return _csi_steps(engine, langfuse, readers, shown, restart, then) if readers else []
    steps = [
        Step(
            f"update Secret {ns}/{secret} from Key Vault (as apply writes it)",
            partial(_write_secret, engine, langfuse),
            f"Key Vault holds the new value, Secret {ns}/{secret} the old one: run `apply "
            f"FILE` (it writes the Secret from Key Vault)"
            + (f", then {restart}" if readers else "")
            + then,
        )
    ]
    if readers:
        steps.append(
            Step(
                f"restart {shown} (rollout restart: new pods read the Secret)",
                partial(_restart, engine, langfuse, readers),
                f"the Secret holds the new value, but running pods still use the old one: run "
                f"{restart}{then}",
            )
        )
    return steps


def _csi_steps(
    engine: Engine,
    langfuse: Langfuse,
    readers: list[tuple[str, str]],
    shown: str,
    restart: str,
    then: str,
) -> list[Step]:
    """``secrets_delivery: csi``: no Secret of ours to write. The readers' rollout restart
    makes their new pods mount the CSI volume, and the driver fetches every object from Key
    Vault as the workload identity (the new version) and syncs the Secret; then the rollout
    is awaited (``kubectl rollout status``) and the delivery checked."""
    ns, secret, spc = langfuse.namespace, secret_name(langfuse), provider_class_name(langfuse)
    check = f"secrets-delivery/{langfuse.name}"
    return [
        Step(
            f"restart {shown} (rollout restart: the new pods mount SecretProviderClass "
            f"{ns}/{spc}, the CSI driver fetches the new version from Key Vault as "
            f"user_assigned_identity/{langfuse.identity} and syncs Secret {ns}/{secret})",
            partial(_restart, engine, langfuse, readers),
            f"Key Vault holds the new value; Secret {ns}/{secret} and the running pods still "
            f"hold the old one: run {restart}{then}",
        ),
        Step(
            f"wait for the rollout of {shown} (their new pods ready: the mount fetched the "
            f"new version), then check {check}",
            partial(_await_rollout, engine, langfuse, readers),
            f"Key Vault holds the new value, but the restarted pods did not become ready (see "
            f"above: e.g. a missing Key Vault Secrets User grant of user_assigned_identity/"
            f"{langfuse.identity} names ForbiddenByRbac); the old pods may still run with the "
            f"old value: fix the cause, run {restart}, then `verify FILE` ({check}){then}",
        ),
    ]


def _openai_key(engine: Engine, item: KeyVaultSecret, account_name: str) -> Rotation:
    """Regenerate the key not in use, point Key Vault at it, roll the readers, then regenerate
    the old key: Key Vault never holds a revoked key."""
    ctx = engine.context
    account = next((a for a in engine.state.openai_accounts if a.name == account_name), None)
    if account is None:
        raise RotationError(f"{item.name}: openai_account/{account_name} is not declared")
    assert engine.state.secrets is not None
    others = [
        other.name
        for other in engine.state.secrets.items
        if other.name != item.name and _account_of(other) == account_name
    ]
    if others:
        raise RotationError(
            f"{item.name}: Key Vault secret {', '.join(others)} also holds a key of "
            f"openai_account/{account_name}; rotating needs the other key free (Azure keeps "
            "two so that one serves while the other is regenerated): rotate by hand"
        )
    _require_live(engine, account.address, "apply first")
    _require_live(engine, item.address, "apply first (it writes the account's key)")
    used = _key_in_use(engine, item, account)
    free = "Key2" if used == "Key1" else "Key1"
    vault = _vault(engine)
    value = _NewValue()
    name = f"openai_account/{account_name}"
    by_hand = (
        f"`az cognitiveservices account keys regenerate -g {ctx.resource_group} -n "
        f"{account_name} --key-name {used.lower()}`"
    )
    steps = [
        Step(
            f"check that Key Vault still holds {used} of {name} (compared in memory)",
            partial(_check_in_use, engine, item, account, used),
            "nothing was written: run rotate again",
        ),
        Step(
            f"regenerate {free} of {name} (not in use: Key Vault holds {used})",
            partial(_regenerate, engine, account, free, value),
            f"Key Vault still holds {used}, which still works; nothing is broken: run rotate again",
        ),
        _vault_step(
            engine,
            item,
            value,
            f"Key Vault {vault} still holds {used}, which still works; {free} was regenerated "
            "and nothing uses it: run rotate again",
        ),
    ]
    if engine.state.langfuse is not None:
        revoke = f"; then revoke the old {used}: {by_hand}"
        steps += _workload_steps(engine, engine.state.langfuse, item, revoke)
    steps += [
        Step(
            f"regenerate {used} of {name} (the old key: Key Vault no longer holds it)",
            partial(_regenerate, engine, account, used, None),
            f"Key Vault holds the new {free}; the old {used} still works (not revoked): "
            f"revoke it with {by_hand}",
        ),
        Step(
            f"check that Key Vault holds a current key of {name}",
            partial(_check_current, engine, item, account),
            f"Key Vault does not hold a current key of {name}: run `apply FILE` (it writes "
            "the account's key)",
        ),
    ]
    warnings = [
        f"what reads {item.name} from Key Vault itself (a Databricks secret scope, an agent) "
        f"must read it again before step {len(steps) - 1}: the old {used} stops working then"
    ]
    return Rotation(item.name, f"key of {name}: {used} in use", steps, warnings)


def _key_in_use(engine: Engine, item: KeyVaultSecret, account: OpenAIAccount) -> str:
    """``Key1`` or ``Key2``: the account's key Key Vault holds (compared in memory)."""
    held = _secret_reconciler(item).current_value(engine.context, item)
    keys = _account_reconciler(account).current_keys(engine.context, account)
    if held not in keys:
        raise RotationError(
            f"{item.name} in Key Vault is not a current key of openai_account/{account.name} "
            "(regenerated since, or set by hand): run `apply FILE` first (it writes the "
            "account's key), then rotate"
        )
    return "Key1" if held == keys[0] else "Key2"


def _account_reconciler(account: OpenAIAccount) -> OpenAIAccountReconciler:
    found = reconciler_for(account)
    assert isinstance(found, OpenAIAccountReconciler)
    return found


# --------------------------------------------------------------------------- the steps
def _make_value(engine: Engine, spec: Generate, value: _NewValue) -> str:
    made = generate(spec)
    engine.context.register_secret(made)
    value.set(made)
    return f"{len(made)} characters"


def _retried(engine: Engine, what: str, fn: Callable[[], None]) -> None:
    call_with_retry(fn, policy=engine.retry, what=what)


def _set_password(engine: Engine, server: PostgresqlServer, value: _NewValue) -> str:
    found = reconciler_for(server)
    assert isinstance(found, PostgresqlServerReconciler)
    password = value.get()
    what = f"set the admin password of {server.address}"
    _retried(engine, what, lambda: found.set_admin_password(engine.context, server, password))
    return "the server took the new password"


def _write_vault(engine: Engine, item: KeyVaultSecret, value: _NewValue) -> str:
    reconciler = _secret_reconciler(item)
    new = value.get()
    versions: list[str] = []

    def write() -> None:
        engine.read_all([item.address], fresh=True)  # re-read before writing
        live = engine.context.live(item.address)
        versions.append(reconciler.set_new_value(engine.context, item, live, new))

    _retried(engine, f"write {item.address}", write)
    engine.read_all([item.address], fresh=True)  # later steps see the new version
    return f"new version {versions[-1]}"


def _write_secret(engine: Engine, langfuse: Langfuse) -> str:
    found = reconciler_for(langfuse)
    assert isinstance(found, LangfuseReconciler)
    _retried(engine, f"write the Secret of {langfuse.address}",
             lambda: found.write_secret(engine.context, langfuse))  # fmt: skip
    return "applied"


def _restart(engine: Engine, langfuse: Langfuse, readers: list[tuple[str, str]]) -> str:
    found = reconciler_for(langfuse)
    assert isinstance(found, LangfuseReconciler)
    at = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    at = at.replace("+00:00", "Z")
    for kind, name in readers:
        _retried(engine, f"restart {kind} {name}",
                 partial(found.restart, engine.context, langfuse, kind, name, at))  # fmt: skip
    return f"restartedAt {at}"


def _await_rollout(engine: Engine, langfuse: Langfuse, readers: list[tuple[str, str]]) -> str:
    """Poll as ``kubectl rollout status`` does until every reader's rollout is complete and
    verify's ``secrets-delivery`` check passes, for at most ROLLOUT_WAIT_S (or the retry
    policy's patience when shorter); else fail with what is pending and the check's detail
    (the mount's failure: ``Available=False`` / ``FailedMount``)."""
    from kubernetes import client as k8s

    from nsc_reconcile.plans import Plan
    from nsc_reconcile.verification.context import Run
    from nsc_reconcile.verification.delivery import check_secrets_delivery
    from nsc_reconcile.verification.results import Status
    from nsc_reconcile.verification.workload import kube_of

    state = engine.state
    plan = Plan(state.environment, engine.context.subscription_id, state.resource_group, [])
    run = Run(engine, plan, None, False)
    apps = k8s.AppsV1Api(kube_of(run))
    read = {"Deployment": apps.read_namespaced_deployment,
            "StatefulSet": apps.read_namespaced_stateful_set}  # fmt: skip
    policy = engine.retry
    deadline = time.monotonic() + min(ROLLOUT_WAIT_S, policy.patience_s)
    wait = max(policy.initial_wait_s, 0.05)
    while True:
        pending = [
            f"{kind} {name}: {why}"
            for kind, name in readers
            if (why := rollout_pending(read[kind](name, langfuse.namespace)))
        ]
        check = check_secrets_delivery(run)
        if not pending and check.status is Status.PASS:
            return f"{len(readers)} rolled out; {check.id} PASS"
        if time.monotonic() + wait > deadline:
            shown = "; ".join([*pending, *([check.detail] if check.detail else [])])
            raise StepFailedError(engine.redactor.redact(shown))
        time.sleep(wait)
        wait = min(wait * 2, policy.max_wait_s, 5.0)


def rollout_pending(obj: Any) -> str:
    """Why the rollout of a Deployment or StatefulSet is not complete ("" when it is), by the
    rules of ``kubectl rollout status`` (kubectl pkg/polymorphichelpers/rollout_status.go):
    the controller observed the current generation, every replica is updated, and every
    updated replica is available (Deployment) or ready on the update revision (StatefulSet)."""
    spec, status, meta = obj.spec, obj.status, obj.metadata
    replicas = spec.replicas if spec.replicas is not None else 1
    if status is None or (status.observed_generation or 0) < (meta.generation or 0):
        return "waiting for the controller to observe the new template"
    updated = status.updated_replicas or 0
    if updated < replicas:
        return f"{updated}/{replicas} new replicas updated"
    if hasattr(status, "update_revision"):  # a StatefulSet
        ready = status.ready_replicas or 0
        if ready < replicas:
            return f"{ready}/{replicas} replicas ready"
        if status.update_revision and status.current_revision != status.update_revision:
            return f"waiting for revision {status.update_revision}"
        return ""
    if (status.replicas or 0) > updated:
        return f"{(status.replicas or 0) - updated} old replicas pending termination"
    available = status.available_replicas or 0
    if available < updated:
        return f"{available}/{updated} updated replicas available"
    return ""


def _check_in_use(
    engine: Engine, item: KeyVaultSecret, account: OpenAIAccount, planned: str
) -> str:
    used = _key_in_use(engine, item, account)
    if used != planned:
        raise StepFailedError(f"Key Vault now holds {used}, not {planned} as computed")
    return f"Key Vault holds {used}"


def _regenerate(
    engine: Engine, account: OpenAIAccount, key_name: str, value: _NewValue | None
) -> str:
    reconciler = _account_reconciler(account)
    keys: list[tuple[str, str]] = []

    def regenerate() -> None:
        keys.append(reconciler.regenerate_key(engine.context, account, key_name))

    _retried(engine, f"regenerate {key_name} of {account.address}", regenerate)
    if value is not None:
        value.set(keys[-1][0 if key_name == "Key1" else 1])
    return f"{key_name} regenerated"


def _check_current(engine: Engine, item: KeyVaultSecret, account: OpenAIAccount) -> str:
    try:
        return f"Key Vault holds {_key_in_use(engine, item, account)}"
    except RotationError as error:
        raise StepFailedError(str(error)) from None


def _postgres_smoke(engine: Engine) -> str:
    """The ``postgres`` smoke through a verification Run of its own (fresh reads)."""
    from nsc_reconcile.engine import Engine as FreshEngine
    from nsc_reconcile.plans import Plan
    from nsc_reconcile.verification.context import Run
    from nsc_reconcile.verification.resolver import default_resolver
    from nsc_reconcile.verification.results import Status
    from nsc_reconcile.verification.smokes import run_smokes

    state = engine.state
    fresh = FreshEngine(state, engine.clients, retry=engine.retry, redactor=engine.redactor)
    plan = Plan(state.environment, fresh.context.subscription_id, state.resource_group, [])
    run = Run(fresh, plan, default_resolver(engine.clients, None), True)
    checks = run_smokes(run, ["postgres"])
    failed = [c for c in checks if c.status is Status.FAIL]
    if failed:
        shown = "; ".join(f"{c.id}: {c.detail}" for c in failed)
        raise StepFailedError(engine.redactor.redact(shown))
    passed = [c.id for c in checks if c.status is Status.PASS]
    skipped = [f"{c.id} ({c.detail})" for c in checks if c.status is Status.SKIP]
    text = f"{len(passed)} check(s) passed"
    return engine.redactor.redact(text + (f", skipped: {'; '.join(skipped)}" if skipped else ""))


# --------------------------------------------------------------------------- running
def run_rotations(
    engine: Engine,
    rotations: Sequence[Rotation],
    progress: Callable[[str], None],
    after_step: Callable[[StepResult], None] | None = None,
) -> RotationResult:
    """Run every step in order; ``progress`` gets one line as a step starts and one as it
    ends; ``after_step`` hears of each result. Stops at the first failure (its result holds
    the state things are in and how to finish by hand). Never raises for a step's failure."""
    results: list[StepResult] = []
    for rotation in rotations:
        total = len(rotation.steps)
        for number, step in enumerate(rotation.steps, 1):
            progress(f"{rotation.key} [{number}/{total}] {step.title}")
            try:
                outcome = step.run()
                ok = True
            except Exception as error:
                outcome = engine.redactor.redact(
                    str(error) if isinstance(error, StepFailedError) else describe_error(error)
                )
                ok = False
            result = StepResult(rotation.key, number, total, step.title, ok, outcome,
                                "" if ok else step.if_failed)  # fmt: skip
            results.append(result)
            progress(f"    {'done' if ok else 'FAILED'}: {outcome}")
            if after_step is not None:
                after_step(result)
            if not ok:
                progress(f"stopped: {step.if_failed}")
                return RotationResult(results)
    return RotationResult(results)
