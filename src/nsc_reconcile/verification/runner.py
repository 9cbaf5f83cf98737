"""Running verification: every check in Definition-of-Done order (the engine's plan is check
"plan-clean"), failures of a check turned into FAIL, evidence redacted. Reads only but the smoke.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from nsc_reconcile.model.network import PrivateEndpoint
from nsc_reconcile.verification.access import (
    check_container_image,
    check_kubelet_acr_pull,
    check_role_assignment,
    check_vault_least_privilege,
    vaults_of_consumers,
)
from nsc_reconcile.verification.alerts import check_action_group, check_alert_rules
from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.delivery import check_secrets_delivery
from nsc_reconcile.verification.dns import check_endpoint_dns
from nsc_reconcile.verification.endpoints import (
    check_endpoint_a_record,
    check_endpoint_connection,
    check_endpoint_zone_link,
)
from nsc_reconcile.verification.gate import evaluate_gate
from nsc_reconcile.verification.keyvault import (
    EXECUTE_MODE_KEY,
    check_execute_mode,
    check_key_vault_secrets,
)
from nsc_reconcile.verification.resolver import default_resolver
from nsc_reconcile.verification.results import Check, Status, VerifyReport
from nsc_reconcile.verification.services import check_langfuse_postgres, check_openai_account
from nsc_reconcile.verification.smokes import SMOKE_NAMES, run_smokes
from nsc_reconcile.verification.workload import check_langfuse_internal, check_langfuse_ready

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients
    from nsc_reconcile.engine import Engine
    from nsc_reconcile.model.state import DesiredState


def check_plan_clean(run: Run) -> Check:
    """Live state matches the desired state: a plan shows no change and nothing blocked. The
    plan reads no secret value, so this passes from outside a private vault's VNet too."""
    plan = run.plan
    counts = plan.counts()
    pending = plan.changes
    evidence = [
        f"{len(pending)} pending change(s)",
        f"{len(plan.resources)} resources compared: {counts['unchanged']} unchanged, "
        f"{counts['read']} existing read, {counts['blocked']} blocked",
    ]
    if plan.unsupported:
        evidence.append("not reconciled by this version: " + ", ".join(plan.unsupported))
    # What the comparison could not do from here (e.g. a value compared by Key Vault version
    # only, outside a private vault's VNet) is evidence, not a failure.
    evidence += [f"note: {r.address}: {note}" for r in plan.resources for note in r.notes]
    problems = []
    if pending:
        problems.append("pending: " + ", ".join(f"{r.action.value} {r.address}" for r in pending))
    if plan.blocked:
        problems.append("blocked: " + ", ".join(r.address for r in plan.blocked))
    return make_check("plan-clean", "Plan is clean (live state matches the desired state)",
                      evidence, problems)  # fmt: skip


def _guarded(check_id: str, title: str, make: Callable[[], Check]) -> Check:
    """A check that raises becomes a FAIL saying why (verification never stops midway)."""
    from nsc_reconcile.retry import describe_error

    try:
        return make()
    except Exception as error:
        return Check(check_id, title, Status.FAIL, "", f"could not check: {describe_error(error)}")


def run_checks(
    engine: Engine,
    *,
    resolver: tuple[str, int] | None = None,
    smoke: bool | Sequence[str] = False,
    target: str | None = None,
    origin: str = "runner",
    progress: Callable[[str], None] | None = None,
    alert_wait_s: float | None = None,
) -> VerifyReport:
    """Every check, in Definition-of-Done order, with ``engine`` (its plan is check 8 and its
    reads are shared by the other checks). Reads only, except the smokes: ``smoke`` True runs
    every smoke (``SMOKE_NAMES``), a sequence runs those. ``origin`` is where the connectivity
    smokes run from: ``runner`` (this machine, inside the VNet), ``aks`` (a Job on the
    cluster) or ``databricks`` (a one-time run on the workspace). ``progress`` receives one-line
    messages during long waits; ``alert_wait_s`` bounds the alert smoke's wait for its rules to
    fire (default: from their evaluation frequency)."""
    start = time.monotonic()
    smokes = tuple(SMOKE_NAMES if smoke is True else () if smoke is False else smoke)
    plan = engine.plan()
    run = Run(engine, plan, resolver, bool(smokes), origin=origin, alert_wait_s=alert_wait_s)
    if progress is not None:
        run.progress = progress
    state = engine.state
    steps: list[tuple[str, str, Callable[[], Check]]] = []

    def add(check_id: str, title: str, function: Callable[..., Check], *args: Any) -> None:
        steps.append((check_id, title, partial(function, run, *args)))

    for account in state.openai_accounts:
        title = "OpenAI account exists and is private-only"
        add(f"openai-account/{account.name}", title, check_openai_account, account)
    endpoint_checks: list[tuple[str, Callable[[Run, PrivateEndpoint], Check]]] = [
        ("pe-connection", check_endpoint_connection),
        ("pe-a-record", check_endpoint_a_record),
        ("pe-zone-link", check_endpoint_zone_link),
        ("dns", check_endpoint_dns),
    ]
    for endpoint in state.private_endpoints:
        for prefix, function in endpoint_checks:
            title = f"Private endpoint {endpoint.name}: {prefix}"
            add(f"{prefix}/{endpoint.name}", title, function, endpoint)
    for server in state.postgresql_servers:
        if server.role == "langfuse":
            title = "LangFuse PostgreSQL exists, separate, private"
            add(f"langfuse-postgres/{server.name}", title, check_langfuse_postgres, server)
    if state.langfuse is not None:
        name = state.langfuse.name
        title = "LangFuse is an internal service (no external exposure)"
        add(f"langfuse-internal/{name}", title, check_langfuse_internal)
        add(f"langfuse-ready/{name}", "LangFuse workloads are ready", check_langfuse_ready)
        if state.langfuse.identity is not None:  # workload identity, and with it `csi`
            title = "LangFuse gets its Key Vault values as its workload identity"
            add(f"secrets-delivery/{name}", title, check_secrets_delivery)
    if state.secrets is not None:
        title = "Key Vault holds every required key"
        add(f"key-vault-secrets/{state.secrets.vault}", title, check_key_vault_secrets)
        title = f"{EXECUTE_MODE_KEY} matches the environment rule"
        add(f"execute-mode/{EXECUTE_MODE_KEY}", title, check_execute_mode)
    for grant in state.role_assignments:
        add(
            f"role_assignment/{grant.name}", "Role assignment present", check_role_assignment, grant
        )
        if grant.principal.aks_kubelet is not None and grant.role == "AcrPull":
            add(f"acr-pull/{grant.scope_name}", "AcrPull", check_kubelet_acr_pull, grant)
    for vault in vaults_of_consumers(run):
        title = "No broader grant at the vault"
        add(f"vault-least-privilege/{vault}", title, check_vault_least_privilege, vault)
    for image in state.container_images:
        add(f"container_image/{image.name}", "Image in the registry", check_container_image, image)
    add("alert-rules", "Alert rules exist, enabled, wired", check_alert_rules)
    for group in state.action_groups:
        title = "Action group exists and is enabled"
        add(f"action-group/{group.name}", title, check_action_group, group)
    add("plan-clean", "Plan is clean", check_plan_clean)

    checks = [_guarded(i, t, m) for i, t, m in steps]
    checks += run_smokes(run, smokes)
    redact = engine.redactor.redact
    checks = [Check(c.id, c.title, c.status, redact(c.evidence), redact(c.detail)) for c in checks]
    gate = evaluate_gate(state.gate, checks, bool(smokes)) if state.gate is not None else None
    return VerifyReport(
        checks=checks,
        environment=state.environment,
        subscription_id=engine.context.subscription_id,
        resource_group=state.resource_group,
        target=target,
        seconds=time.monotonic() - start,
        gate=gate,
    )


def verify(
    state: DesiredState,
    clients: Clients,
    *,
    resolver: str | None = None,
    smoke: bool | Sequence[str] = False,
    parallelism: int = 8,
    origin: str = "runner",
    progress: Callable[[str], None] | None = None,
    alert_wait_s: float | None = None,
) -> VerifyReport:
    """Check live state against the Definition of Done; see ``nsc_reconcile.verify``."""
    from nsc_reconcile.engine import Engine

    where = default_resolver(clients, resolver)
    engine = Engine(state, clients, parallelism=parallelism)
    return run_checks(
        engine,
        resolver=where,
        smoke=smoke,
        origin=origin,
        progress=progress,
        alert_wait_s=alert_wait_s,
    )
