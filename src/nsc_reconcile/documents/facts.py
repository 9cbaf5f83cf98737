"""The facts the documents show, as plain values: read once from live state (``gather``),
rendered in either language (``render``). No I/O, no SDK; never a secret value.

``None`` means "not found live" (the renderers show it as missing); lists keep a stable order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EndpointFact:
    """One private endpoint (section 4.3, placement in 7.2)."""

    name: str
    id: str | None
    target: str  # the declared address, e.g. openai_account/nsc-aoai-dev
    target_id: str | None
    group_id: str
    subnet: str  # <vnet>/<subnet> as declared
    subnet_id: str | None  # live
    layer: str  # the subnet's role: private-endpoints | aks | databricks | other
    nic_id: str | None
    ip: str | None
    zone: str
    hostname: str | None  # the public service name, e.g. nsc-aoai-dev.openai.azure.com
    record: str | None  # the A record's FQDN in the privatelink zone
    record_ips: tuple[str, ...] | None  # None: no A record
    connection: str | None  # Approved | Pending | Rejected | Disconnected


@dataclass(frozen=True)
class RuleFact:
    """One log alert rule (6.6)."""

    name: str
    id: str | None
    event: str
    table: str
    query: str | None
    frequency: str | None
    window: str | None
    severity: int | None
    enabled: bool | None
    action_groups: tuple[str, ...]  # names, live when the rule exists


@dataclass(frozen=True)
class ReceiverFact:
    kind: str  # email | webhook | sms ...
    name: str
    address: str | None  # an e-mail address; never a webhook URI (it embeds a token)


@dataclass(frozen=True)
class ActionGroupFact:
    name: str
    id: str | None
    enabled: bool | None
    short_name: str | None
    receivers: tuple[ReceiverFact, ...]


@dataclass(frozen=True)
class CollectionFact:
    """A data collection rule with its stream and the table it lands in (6.6)."""

    name: str
    id: str | None
    streams: tuple[str, ...]
    table: str
    table_id: str | None
    workspace: str
    public_ingestion: bool | None  # no data collection endpoint: the public ingestion URL
    id_key: str | None  # the Key Vault key holding its immutable id, when one does


@dataclass(frozen=True)
class AlertFlowFacts:
    events: tuple[str, ...]
    collections: tuple[CollectionFact, ...]
    rules: tuple[RuleFact, ...]
    groups: tuple[ActionGroupFact, ...]


@dataclass(frozen=True)
class SubnetFact:
    """A subnet of an existing VNet the desired state names (7.2)."""

    vnet: str
    name: str
    id: str | None
    prefixes: tuple[str, ...]
    layer: str
    nsg: str | None  # the NSG attached to it (name)
    endpoints: tuple[str, ...]  # names of every private endpoint in it (ours and others')


@dataclass(frozen=True)
class RuleEndFact:
    names: tuple[str, ...]  # declared: subnets, private endpoints or literal prefixes
    addresses: tuple[str, ...]  # as the live rule holds them


@dataclass(frozen=True)
class NsgRuleFact:
    name: str
    nsg: str
    id: str | None
    priority: int | None
    direction: str | None
    access: str | None
    protocol: str | None
    ports: tuple[str, ...]
    source: RuleEndFact
    destination: RuleEndFact


@dataclass(frozen=True)
class NetworkFacts:
    subnets: tuple[SubnetFact, ...]
    rules: tuple[NsgRuleFact, ...]


@dataclass(frozen=True)
class AccessFact:
    """Public access and local authentication of one resource (7.3)."""

    address: str
    id: str | None
    public_access: str | None  # Enabled | Disabled | a short live description
    network_default: str | None  # network ACL default action, when the kind has one
    local_auth: str | None  # enabled | disabled | n/a, per kind (see gather)


@dataclass(frozen=True)
class Delivery:
    """One Key Vault secret delivered to the workload through the synced Kubernetes Secret."""

    vault_secret: str
    secret_key: str  # key of the Kubernetes Secret
    consumers: tuple[str, ...]  # "Deployment/langfuse env NEXTAUTH_SECRET", live


@dataclass(frozen=True)
class Grant:
    """A role assignment the desired state declares (shown as declared)."""

    name: str
    details: tuple[tuple[str, str], ...]  # (field, value) pairs, in declaration order


@dataclass(frozen=True)
class AccessPolicyFact:
    object_id: str
    secret_permissions: tuple[str, ...]


@dataclass(frozen=True)
class SecurityFacts:
    access: tuple[AccessFact, ...]
    vault: str | None
    vault_id: str | None
    vault_rbac: bool | None  # None: the vault was not found
    access_policies: tuple[AccessPolicyFact, ...]
    k8s_secret: str | None  # namespace/name of the synced Secret
    k8s_secret_exists: bool
    deliveries: tuple[Delivery, ...]
    grants: tuple[Grant, ...] | None  # None: the desired state has no role-assignment kind


@dataclass(frozen=True)
class CredentialFact:
    """One Key Vault key (TEAM_CREDENTIALS.md): everything about it but its value."""

    name: str
    sensitive: bool
    description: str | None  # declared in the desired state
    source: str  # output | env | generate | external | literal
    source_detail: str  # the output's address, the variable's name, the generator's shape
    exists: bool
    secret_uri: str | None  # versionless: always the current version
    # What this tool wires it to: (what, subject), e.g. ("workload", "Deployment/langfuse env
    # NEXTAUTH_SECRET"), ("pg-admin", "postgresql_server/nsc-pg-langfuse-dev").
    consumers: tuple[tuple[str, str], ...]
    k8s_key: str | None  # key in the synced Kubernetes Secret, when synced there


@dataclass(frozen=True)
class CredentialFacts:
    vault: str | None
    vault_rbac: bool | None
    databricks_scope: str | None
    k8s_secret: str | None  # namespace/name
    keys: tuple[CredentialFact, ...]
    grants: tuple[Grant, ...] | None
    access_policies: tuple[AccessPolicyFact, ...]


@dataclass(frozen=True)
class Facts:
    """Everything the documents show, read in one pass."""

    environment: str
    endpoints: tuple[EndpointFact, ...]
    alerts: AlertFlowFacts
    network: NetworkFacts
    security: SecurityFacts
    credentials: CredentialFacts
    pending: tuple[str, ...] = field(default=())  # plan changes: live differs from desired
