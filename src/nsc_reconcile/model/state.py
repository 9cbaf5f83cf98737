"""The root of the desired state: one environment of the plan, in one file shape.

Holds the existing references and every managed resource kind, and enumerates them with the
path where each was declared (for error locations and the dependency graph).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile import kinds
from nsc_reconcile.model.access import RoleAssignment, UserAssignedIdentity
from nsc_reconcile.model.base import FieldPath, Model, Resource, name_of
from nsc_reconcile.model.docs import Docs
from nsc_reconcile.model.existing import Existing
from nsc_reconcile.model.gate import Gate
from nsc_reconcile.model.images import ContainerImage
from nsc_reconcile.model.monitoring import (
    ActionGroup,
    DataCollectionRule,
    LogAlert,
    LogAnalyticsTable,
)
from nsc_reconcile.model.network import (
    NsgRule,
    PrivateDnsZone,
    PrivateDnsZoneLink,
    PrivateEndpoint,
)
from nsc_reconcile.model.openai import OpenAIAccount
from nsc_reconcile.model.postgres import PostgresqlServer
from nsc_reconcile.model.secrets import Secrets
from nsc_reconcile.model.smoke import Smoke
from nsc_reconcile.model.workload import Langfuse, federation_problem

# An environment's name: its overlay file (envs/<name>.yaml), its nsc-environment tag, its apply
# lease record and `${env}` in names; any overlay present may be used (`--env NAME`).
ENVIRONMENT_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"


def _not_shared(value: str) -> str:
    if value == "shared":  # the nsc-environment tag of resources every environment declares
        raise PydanticCustomError(
            "environment", "'shared' marks resources that several environments declare; "
            "choose another environment name", {}
        )  # fmt: skip
    return value


Environment = Annotated[
    str, StringConstraints(pattern=ENVIRONMENT_PATTERN), AfterValidator(_not_shared)
]


class DesiredState(Model):
    """What one environment must look like."""

    version: Literal[1] = Field(description="File format version; 1.")
    environment: Environment = Field(
        description="The environment's name (`dev`, `staging`, `prod`, or any other of "
        "lowercase letters, digits and `-`, at most 20 characters; not `shared`); `${env}` in "
        "any string is replaced by it."
    )
    subscription_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
        description="Azure subscription; default: AZURE_SUBSCRIPTION_ID or the emulator's.",
    )
    location: str = Field(
        pattern=r"^[a-z]+[a-z0-9]*$",
        description="Azure region for new resources, e.g. koreacentral.",
    )
    resource_group: Annotated[str, name_of("resource_group")] = Field(
        description="The existing resource group that holds the environment."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags put on every resource this tool creates."
    )
    existing: Existing = Field(
        default_factory=Existing, description="Resources read but never written."
    )
    openai_accounts: list[OpenAIAccount] = Field(default_factory=list, description="OpenAI.")
    postgresql_servers: list[PostgresqlServer] = Field(
        default_factory=list, description="PostgreSQL Flexible Servers to create."
    )
    private_dns_zones: list[PrivateDnsZone] = Field(
        default_factory=list, description="Private DNS zones to create."
    )
    private_dns_zone_links: list[PrivateDnsZoneLink] = Field(
        default_factory=list, description="VNet links of new or existing zones."
    )
    private_endpoints: list[PrivateEndpoint] = Field(
        default_factory=list, description="Private endpoints."
    )
    nsg_rules: list[NsgRule] = Field(default_factory=list, description="NSG security rules.")
    log_analytics_tables: list[LogAnalyticsTable] = Field(
        default_factory=list, description="Custom Log Analytics tables."
    )
    data_collection_rules: list[DataCollectionRule] = Field(
        default_factory=list, description="Data collection rules."
    )
    action_groups: list[ActionGroup] = Field(default_factory=list, description="Action groups.")
    log_alerts: list[LogAlert] = Field(default_factory=list, description="Log alert rules.")
    user_assigned_identities: list[UserAssignedIdentity] = Field(
        default_factory=list, description="Managed identities (and their federated credentials)."
    )
    role_assignments: list[RoleAssignment] = Field(
        default_factory=list, description="Azure role assignments (least privilege)."
    )
    container_images: list[ContainerImage] = Field(
        default_factory=list,
        description="Images the workload runs, imported into the registry, pinned by digest.",
    )
    secrets: Secrets | None = Field(default=None, description="Key Vault secrets.")
    langfuse: Langfuse | None = Field(default=None, description="LangFuse on AKS.")
    smoke: Smoke | None = Field(
        default=None,
        description="Where `verify --smoke --from aks|databricks` runs its connectivity checks.",
    )
    gate: Gate | None = Field(
        default=None,
        description="The INFRA-READY gate (seed §8): tracked work items and the checks that "
        "evidence them; `verify` ends with it OPEN or CLOSED.",
    )
    docs: Docs = Field(
        default_factory=Docs, description="How `docs` renders the plan's documents (seed §7)."
    )

    @model_validator(mode="after")
    def _workload_federated(self) -> DesiredState:
        # LangFuse's workload identity signs in only through a federated credential for
        # its ServiceAccount (model/workload.py says which one to add).
        if self.langfuse is not None:
            problem = federation_problem(self.langfuse, self.user_assigned_identities)
            if problem is not None:
                raise PydanticCustomError("federation", "{problem}", {"problem": problem})
        return self

    def resources(self) -> Iterator[tuple[FieldPath, Resource]]:
        """Every resource (existing and managed) with the path where it is declared."""
        for collection in type(self.existing).model_fields:
            for index, item in enumerate(getattr(self.existing, collection)):
                yield ("existing", collection, index), item
        # Each managed kind's collection (and its children), in the order the plan's phases
        # create them: the kind registry's `collection`, `children` and `phase`.
        for spec in kinds.managed():
            for path, item in self._collection(spec.collection):
                yield path, item
                for field in spec.children:
                    for sub, child in enumerate(getattr(item, field)):
                        yield (*path, field, sub), child

    def _collection(self, where: tuple[str, ...]) -> Iterator[tuple[FieldPath, Resource]]:
        """The resources at ``where``: a list's items, or one optional resource."""
        value: object = self
        for part in where:
            value = getattr(value, part, None)
            if value is None:
                return
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield (*where, index), item
        elif isinstance(value, Resource):
            yield where, value

    def managed(self) -> list[Resource]:
        """The resources this tool writes."""
        return [r for _, r in self.resources() if not r.existing]
