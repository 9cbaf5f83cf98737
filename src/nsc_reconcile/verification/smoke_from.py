"""The connectivity smokes (dns, postgres, openai, langfuse) run from INSIDE the network
(``verify --smoke --from aks|databricks``): what to check and with which settings, the
in-network script (``incluster/smoke_job.py``) run once for all of them (a Kubernetes Job:
``smoke_from_aks``; a Databricks one-time run: ``smoke_from_databricks``), and its JSON lines
turned into checks ``smoke-<name>/<target>/from-<origin>``.

Credentials never pass through here as values for the Job's environment: they are named
(a Key Vault secret, a key of a Kubernetes Secret) and resolved where the script runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.endpoints import endpoint_facts
from nsc_reconcile.verification.results import Check, Status

CONNECTIVITY = ("dns", "postgres", "openai", "langfuse")
OPENAI_API_VERSION = "2024-10-21"
# What the script reads each credential from (NSC_SMOKE_* variables, see smoke_job.py).
PG_PASSWORD = "NSC_SMOKE_PG_PASSWORD"
OPENAI_KEY = "NSC_SMOKE_OPENAI_KEY"
LANGFUSE_PUBLIC = "NSC_SMOKE_LANGFUSE_PUBLIC_KEY"
LANGFUSE_SECRET = "NSC_SMOKE_LANGFUSE_SECRET_KEY"
_LANGFUSE_KEYS = {
    LANGFUSE_PUBLIC: ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "langfuse-public-key"),
    LANGFUSE_SECRET: ("LANGFUSE_INIT_PROJECT_SECRET_KEY", "langfuse-secret-key"),
}


def script_text() -> str:
    """The in-network script, as shipped in the package."""
    source = resources.files("nsc_reconcile.verification.incluster") / "smoke_job.py"
    return source.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Expected:
    """One result the in-network run must give: the script's (check, target) -> a Check."""

    check: str
    target: str
    check_id: str
    title: str


@dataclass
class SmokePlan:
    """What one in-network run checks: plain settings, credentials by Key Vault secret name,
    the results expected, and checks decided before running (SKIP or FAIL)."""

    origin: str
    env: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # variable -> Key Vault secret
    expected: list[Expected] = field(default_factory=list)
    decided: list[Check] = field(default_factory=list)
    # variable -> (OpenAI account address, key output): read through ARM when the vault's
    # data plane is not reachable from here (a private vault, this runner outside the VNet)
    arm_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # script check -> a note for it

    @property
    def checks(self) -> list[str]:
        return list(dict.fromkeys(e.check for e in self.expected))

    def settle(self, status: Status, reason: str) -> list[Check]:
        """Every expected result with the same verdict (the run could not happen)."""
        if status is Status.SKIP:
            return [make_check(e.check_id, e.title, [], [], skip=reason) for e in self.expected]
        return [make_check(e.check_id, e.title, [], [reason]) for e in self.expected]


def plan_smoke(run: Run, names: list[str], origin: str) -> SmokePlan:
    """Work out the run's settings for the connectivity smokes ``names`` from ``origin``."""
    plan = SmokePlan(origin)
    plan.env["NSC_SMOKE_ORIGIN"] = origin
    if "dns" in names:
        _plan_dns(run, plan)
    if "postgres" in names:
        _plan_postgres(run, plan)
    if "openai" in names:
        _plan_openai(run, plan)
    if "langfuse" in names:
        _plan_langfuse(run, plan)
    plan.env["NSC_SMOKE_CHECKS"] = ",".join(plan.checks)
    return plan


def _suffix(plan: SmokePlan) -> str:
    return f"from-{plan.origin}"


def _plan_dns(run: Run, plan: SmokePlan) -> None:
    names: list[str] = []
    expect: dict[str, str] = {}
    for endpoint in run.state.private_endpoints:
        facts = endpoint_facts(run, endpoint)
        if facts.hostname and facts.hostname not in names:
            names.append(facts.hostname)
            if facts.ip:
                expect[facts.hostname] = facts.ip
    langfuse = run.state.langfuse
    if langfuse is not None and plan.origin == "aks":
        names.append(f"{langfuse.service.name}.{langfuse.namespace}.svc.cluster.local")
    for name in names:
        where = f"to {expect[name]}" if name in expect else "to a private address"
        title = f"{name} resolves {where} from {plan.origin}"
        plan.expected.append(Expected("dns", name, f"smoke-dns/{name}/{_suffix(plan)}", title))
    if not names:
        plan.decided.append(
            make_check(
                f"smoke-dns/{_suffix(plan)}",
                f"Smoke: dns from {plan.origin}",
                [],
                [],
                skip="no private endpoint or LangFuse Service to resolve",
            )
        )
    plan.env["NSC_SMOKE_DNS_NAMES"] = ",".join(names)
    plan.env["NSC_SMOKE_DNS_EXPECT"] = json.dumps(expect, sort_keys=True)


def _plan_postgres(run: Run, plan: SmokePlan) -> None:
    server = next((s for s in run.state.postgresql_servers if s.role == "langfuse"), None)
    if server is None:
        title = f"Smoke: postgres from {plan.origin}"
        plan.decided.append(
            make_check(
                f"smoke-postgres/{_suffix(plan)}",
                title,
                [],
                [],
                skip="no postgresql_servers entry with role langfuse",
            )
        )
        return
    check_id = f"smoke-postgres/{server.name}/{_suffix(plan)}"
    title = f"{server.name}: TLS, SCRAM login and SELECT 1 from {plan.origin}"
    props = (run.wire(server.address) or {}).get("properties") or {}
    fqdn, login = props.get("fullyQualifiedDomainName"), props.get("administratorLogin")
    if not fqdn or not login:
        problem = "the server does not exist or has no fullyQualifiedDomainName/administratorLogin"
        plan.decided.append(make_check(check_id, title, [], [problem]))
        return
    langfuse = run.state.langfuse
    database = server.databases[0].name if server.databases else "postgres"
    if langfuse is not None and langfuse.database.server == server.name:
        database = langfuse.database.database
    plan.env.update(
        {
            "NSC_SMOKE_PG_HOST": str(fqdn),
            "NSC_SMOKE_PG_PORT": "5432",
            "NSC_SMOKE_PG_USER": str(login),
            "NSC_SMOKE_PG_DATABASE": database,
        }
    )
    plan.credentials[PG_PASSWORD] = server.admin_password.key_vault_secret
    plan.expected.append(Expected("postgres", str(fqdn), check_id, title))


def _plan_openai(run: Run, plan: SmokePlan) -> None:
    account = next((a for a in run.state.openai_accounts if a.deployments), None)
    if account is None:
        title = f"Smoke: openai from {plan.origin}"
        plan.decided.append(
            make_check(
                f"smoke-openai/{_suffix(plan)}",
                title,
                [],
                [],
                skip="no OpenAI account with a deployment",
            )
        )
        return
    deployment = account.deployments[0].name
    check_id = f"smoke-openai/{account.name}/{deployment}/{_suffix(plan)}"
    title = f"{account.name}/{deployment}: one chat completion from {plan.origin}"
    endpoint = ((run.wire(account.address) or {}).get("properties") or {}).get("endpoint")
    outputs = {f"{account.address}.{key}": key for key in ("primary_key", "secondary_key")}
    key_secret, key_output = next(
        (
            (item.name, outputs[str(item.source.output)])
            for item in (run.state.secrets.items if run.state.secrets else [])
            if item.source is not None and item.source.output in outputs
        ),
        (None, ""),
    )
    if not endpoint:
        plan.decided.append(make_check(check_id, title, [], ["the account has no endpoint"]))
        return
    if key_secret is None:
        reason = f"no Key Vault secret holds the key of {account.address}"
        plan.decided.append(make_check(check_id, title, [], [], skip=reason))
        return
    plan.env.update(
        {
            "NSC_SMOKE_OPENAI_ENDPOINT": str(endpoint),
            "NSC_SMOKE_OPENAI_DEPLOYMENT": deployment,
            "NSC_SMOKE_OPENAI_API_VERSION": OPENAI_API_VERSION,
        }
    )
    plan.credentials[OPENAI_KEY] = key_secret
    plan.arm_keys[OPENAI_KEY] = (account.address, key_output)
    plan.expected.append(Expected("openai", str(endpoint), check_id, title))


def _plan_langfuse(run: Run, plan: SmokePlan) -> None:
    langfuse = run.state.langfuse
    if langfuse is None:
        title = f"Smoke: langfuse from {plan.origin}"
        plan.decided.append(
            make_check(
                f"smoke-langfuse/{_suffix(plan)}", title, [], [], skip="no LangFuse declared"
            )
        )
        return
    check_id = f"smoke-langfuse/{langfuse.name}/{_suffix(plan)}"
    title = f"LangFuse {langfuse.service.name}: health, trace written and read from {plan.origin}"
    if plan.origin != "aks":
        reason = (
            f"{langfuse.service.name} is a ClusterIP Service (seed §3.6): reachable only inside "
            f"the cluster, not from {plan.origin}"
        )
        plan.decided.append(make_check(check_id, title, [], [], skip=reason))
        return
    url = (
        f"http://{langfuse.service.name}.{langfuse.namespace}.svc.cluster.local:"
        f"{langfuse.service.port}"
    )
    plan.env["NSC_SMOKE_LANGFUSE_URL"] = url
    plan.env["NSC_SMOKE_TRACE_WAIT"] = "60"
    for variable, (init_key, default) in _LANGFUSE_KEYS.items():
        plan.credentials[variable] = langfuse.secret_env.get(init_key, default)
    plan.expected.append(Expected("langfuse", url, check_id, title))


# --------------------------------------------------------------------------- results
def checks_from_output(plan: SmokePlan, output: str, where: str) -> list[Check]:
    """The script's JSON lines -> one check per expected result. ``where`` says where it ran
    (the Job and pod, the Databricks run); a result that is missing is a FAIL."""
    results: dict[tuple[str, str], dict[str, object]] = {}
    other: list[str] = []
    config_error = ""
    for line in output.splitlines():
        line = line.strip()
        try:
            loaded = json.loads(line) if line.startswith("{") else None
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict) or "check" not in loaded:
            if line:
                other.append(line)
            continue
        if loaded.get("check") == "config":
            config_error = str(loaded.get("detail") or "unusable configuration")
        results[(str(loaded.get("check")), str(loaded.get("target") or ""))] = loaded
    checks = []
    for expected in plan.expected:
        found = results.get((expected.check, expected.target))
        if found is None:
            reason = config_error or "the in-network run gave no result for it"
            if other and not config_error:
                reason += f"; its last output line: {other[-1][:300]}"
            checks.append(make_check(expected.check_id, expected.title, [where], [reason]))
            continue
        status = str(found.get("status"))
        evidence = [where, str(found.get("evidence") or ""), f"{found.get('ms', '?')} ms"]
        evidence.append(plan.notes.get(expected.check, ""))
        detail = str(found.get("detail") or "")
        if status == "PASS":
            check = make_check(expected.check_id, expected.title, evidence, [])
            if detail:
                check = Check(check.id, check.title, check.status, check.evidence, detail)
            checks.append(check)
        elif status == "SKIP":
            checks.append(make_check(expected.check_id, expected.title, [where], [], skip=detail))
        else:
            checks.append(
                make_check(expected.check_id, expected.title, evidence, [detail or "failed"])
            )
    return checks


def smoke_from(run: Run, names: list[str]) -> list[Check]:
    """The connectivity smokes ``names`` run once, together, from ``run.origin``."""
    plan = plan_smoke(run, names, run.origin)
    if not plan.expected:
        return plan.decided
    if run.origin == "aks":
        from nsc_reconcile.verification.smoke_from_aks import run_in_cluster

        return [*plan.decided, *run_in_cluster(run, plan)]
    if run.origin == "databricks":
        from nsc_reconcile.verification.smoke_from_databricks import run_on_databricks

        return [*plan.decided, *run_on_databricks(run, plan)]
    raise ValueError(f"unknown origin {run.origin!r}: expected runner, aks or databricks")
