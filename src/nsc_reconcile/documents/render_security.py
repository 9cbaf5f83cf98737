"""Rendering section 7.3 (security settings) and the `credentials` section of
TEAM_CREDENTIALS.md: per Key Vault key its purpose, source, readers and references, never a
value. Pure.
"""

from __future__ import annotations

from nsc_reconcile.documents.facts import (
    AccessPolicyFact,
    CredentialFact,
    CredentialFacts,
    Grant,
    SecurityFacts,
)
from nsc_reconcile.documents.markdown import code, codes, finish, heading, table


def _grant(grant: Grant, m: str) -> str:
    details = ", ".join(f"{k} {code(v, m)}" for k, v in grant.details)
    return f"{code(grant.name, m)}" + (f" ({details})" if details else "")


def _policies(policies: tuple[AccessPolicyFact, ...], w: dict[str, str]) -> list[str]:
    return [
        "- " + w["policy_line"].format(object_id=p.object_id,
                                       permissions=codes(p.secret_permissions, w["none"]))
        for p in policies
    ] or [f"- {w['none']}"]  # fmt: skip


def render_security(security: SecurityFacts, w: dict[str, str], intro: str) -> str:
    """7.3: public access and local auth per resource, vault mode, secret delivery, grants."""
    m = w["missing"]
    na = "—"
    lines = heading(w["7.3"], intro)
    lines += [f"#### {w['access_table']}", ""]
    headers = [w[k] for k in ("resource", "public_access", "network_default", "local_auth")]
    rows = [
        [
            code(a.address, m) if a.id else f"{code(a.address, m)} {m}",
            a.public_access or (na if a.id else m),
            a.network_default or na,
            a.local_auth or na,
        ]
        for a in security.access
    ]
    lines += [*table(headers, rows), ""]
    lines += [f"#### {w['vault_mode']}", ""]
    if security.vault is None:
        lines.append(w["no_vault"])
    elif security.vault_rbac is None:
        lines.append(w["vault_missing"].format(vault=security.vault))
    elif security.vault_rbac:
        lines.append(w["vault_rbac"].format(vault=security.vault))
    else:
        lines += [w["vault_policies"].format(vault=security.vault), ""]
        lines += _policies(security.access_policies, w)
    if security.vault_id:
        lines += ["", f"- {code(security.vault_id, m)}"]
    lines += ["", f"#### {w['delivery']}", ""]
    if security.k8s_secret is None:
        lines.append(w["no_delivery"])
    else:
        lines.append(w["delivery_intro"].format(secret=security.k8s_secret))
        if not security.k8s_secret_exists:
            lines += ["", w["delivery_missing"].format(secret=security.k8s_secret)]
        lines.append("")
        headers = [w[k] for k in ("vault_secret", "secret_key", "used_by")]
        rows = [
            [code(d.vault_secret, m), code(d.secret_key, m), codes(d.consumers, w["none"])]
            for d in security.deliveries
        ]
        lines += [*table(headers, rows), "", w["delivery_others"]]
    lines += ["", f"#### {w['grants']}", ""]
    if not security.grants:
        lines.append(w["no_grants"])
    else:
        lines += [f"- {_grant(g, m)}" for g in security.grants]
    return finish(lines)


def _purpose(key: CredentialFact, w: dict[str, str]) -> str:
    """The key's description, else the seed's note, else what it is wired to or comes from."""
    if key.description:
        return key.description
    if f"seed.{key.name}" in w:
        return w[f"seed.{key.name}"]
    for what, subject in key.consumers:
        if what == "workload":
            return w["purpose.workload"].format(subject=key.k8s_key or subject)
        return w[f"purpose.{what}"].format(subject=subject)
    return _source(key, w)


def _source(key: CredentialFact, w: dict[str, str]) -> str:
    if key.source == "output":
        address, _, output = key.source_detail.rpartition(".")
        return w["src.output"].format(address=address, output=output)
    return w[f"src.{key.source}"].format(detail=key.source_detail)


def _readers(key: CredentialFact, facts: CredentialFacts, w: dict[str, str]) -> list[str]:
    m = w["missing"]
    readers = [w[f"reader.{what}"].format(subject=subject) for what, subject in key.consumers]
    if facts.vault_rbac is False:
        principals = [p.object_id for p in facts.access_policies if "get" in
                      {s.lower() for s in p.secret_permissions}]  # fmt: skip
        readers.append(
            w["reader.policies"].format(principals=codes(principals, m))
            if principals
            else w["reader.policies_none"]
        )
    elif facts.grants:
        readers.append(
            w["reader.rbac"].format(grants="; ".join(_grant(g, m) for g in facts.grants))
        )
    else:
        readers.append(w["reader.rbac_none"])
    return readers


def _references(key: CredentialFact, facts: CredentialFacts, w: dict[str, str]) -> list[str]:
    vault = facts.vault or w["missing"]
    refs = [
        f"az CLI: `az keyvault secret show --vault-name {vault} --name {key.name} "
        "--query value -o tsv`"
    ]
    if key.k8s_key and facts.k8s_secret:
        namespace, _, secret = facts.k8s_secret.partition("/")
        refs.append(w["ref.k8s"].format(secret=secret, key=key.k8s_key, namespace=namespace))
    else:
        refs.append(w["ref.k8s_none"])
    if facts.databricks_scope:
        refs.append(w["ref.databricks"].format(scope=facts.databricks_scope, key=key.name))
    return refs


def render_credentials(facts: CredentialFacts, w: dict[str, str], intro: str) -> str:
    """TEAM_CREDENTIALS.md: per Key Vault key its name, purpose, source, who may read it and
    how to reference it. Never a value: nothing here is read from the vault's data plane."""
    m = w["missing"]
    lines = heading(w["credentials"], intro, level=2)
    if not facts.keys:
        return finish([*lines, w["no_keys"]])
    mode = {None: w["mode_unknown"], True: w["mode_rbac"], False: w["mode_policies"]}
    lines += [w["cred_intro"].format(vault=facts.vault, mode=mode[facts.vault_rbac]), ""]
    headers = [w[k] for k in ("key", "purpose", "source", "sensitive", "in_vault")]
    rows = [
        [
            code(k.name, m),
            _purpose(k, w),
            _source(k, w),
            w["yes"] if k.sensitive else w["no"],
            w["yes"] if k.exists else w["no"],
        ]
        for k in facts.keys
    ]
    lines += [*table(headers, rows), ""]
    for key in facts.keys:
        lines += [f"### `{key.name}`", ""]
        lines.append(f"- {w['purpose']}: {_purpose(key, w)}")
        lines.append(f"- {w['source']}: {_source(key, w)}")
        in_vault = w["yes"] if key.exists else w["no"]
        if key.secret_uri:
            in_vault += ", " + w["secret_uri"].format(uri=key.secret_uri)
        lines.append(f"- {w['in_vault']}: {in_vault}")
        lines.append(f"- {w['readers']}:")
        lines += [f"  - {r}" for r in _readers(key, facts, w)]
        lines.append(f"- {w['reference']}:")
        lines += [f"  - {r}" for r in _references(key, facts, w)]
        lines.append("")
    return finish(lines)
