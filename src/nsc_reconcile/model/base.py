"""Shared pieces of the desired-state models: strict base model, names, references, policy.

Every resource model derives from ``Resource``: it has a ``kind`` (the word used in addresses
such as ``openai_account/nsc-aoai-dev``), a ``name`` checked against Azure's naming rules, and
lists the references it makes so the graph can be built. Imports no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile import kinds
from nsc_reconcile.naming import check_name

FieldPath = tuple[str | int, ...]


class Model(BaseModel):
    """Strict: unknown fields are errors, no silent type coercion, values are frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def name_of(rule: str) -> AfterValidator:
    """A validator checking a name against the Azure naming rule ``rule``."""

    def check(value: str) -> str:
        problem = check_name(rule, value)
        if problem is not None:
            raise PydanticCustomError("azure_name", "invalid name: {problem}", {"problem": problem})
        return value

    return AfterValidator(check)


def policy_violation(principle: str, message: str) -> PydanticCustomError:
    """An error that names the private-only principle it breaks."""
    return PydanticCustomError(
        "policy", "policy violation ({principle}): {message}", {"principle": principle,
                                                                "message": message}
    )  # fmt: skip


PRIVATE_ONLY = "private-only: nothing new may be reachable from the public internet"
SEPARATE_DB = "layer separation: LangFuse gets its own PostgreSQL server, never the business DB"
SAFE_MODE = "agent-execute-mode is 'dry-run' outside prod"
NO_PLAINTEXT = "credentials are never written in plain text; Key Vault manages them"


@dataclass(frozen=True)
class Reference:
    """A reference from one field of a resource to another resource's address."""

    field: FieldPath
    address: str


def ref_field(description: str, **kwargs: Any) -> Any:
    """A Field for a reference by name, documented as such."""
    return Field(description=description, **kwargs)


class Resource(Model):
    """A resource of the desired state, addressed as ``kind/name``."""

    kind: ClassVar[str]  # its naming rule and everything else about it: nsc_reconcile.kinds
    existing: ClassVar[bool] = False

    name: str = Field(description="The resource's name in Azure (or Kubernetes).")
    adopt: bool = Field(
        default=False,
        description="Take over a resource of this name that exists but was not created by "
        "nsc-reconcile, or was created by an earlier version that did not record its "
        "environment (it gets the managed-by and nsc-environment tags). Without it such a "
        "resource is reported and left alone. Never takes one of another environment.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        problem = kinds.name_rule(cls.kind).check(value)
        if problem is not None:
            raise PydanticCustomError("azure_name", "invalid name: {problem}", {"problem": problem})
        return value

    @property
    def key(self) -> str:
        """The part of the address after ``kind/``; children override it (``parent/child``)."""
        return self.name

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.key}"

    def references(self) -> list[Reference]:
        """Every other resource this one refers to (edges of the graph)."""
        return []

    @property
    def must_exist(self) -> bool:
        """Whether the resource is only reconciled, never created (e.g. an account reused)."""
        return False

    @property
    def details(self) -> str:
        """A short description of what the resource contains, for summaries."""
        return ""


class ChildResource(Resource):
    """A resource declared inside another (a deployment in its account, a database in its
    server): addressed as ``kind/<parent>/<name>``; the parent sets ``_parent``."""

    _parent: str = PrivateAttr(default="")

    def adopt_parent(self, parent: str) -> None:
        """Record the name of the holding resource (called by the parent's model)."""
        self._parent = parent

    @property
    def key(self) -> str:
        return f"{self._parent}/{self.name}"


NonEmptyStr = Annotated[str, Field(min_length=1)]
