"""The `docs` section: how `docs FILE` renders the plan's documents (seed §7).

Which language the headings use and where the two documents live. Holds no facts: the
documents are rendered from the rest of the desired state and live state.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nsc_reconcile.model.base import Model


class DocumentPaths(Model):
    """Where the documents live, relative to the desired-state file's directory."""

    infra_manual: str = Field(
        default="Infra_Manual.md",
        min_length=1,
        description="Gets sections 4.3, 6.6, 7.2 and 7.3 between nsc-reconcile markers.",
    )
    team_credentials: str = Field(
        default="TEAM_CREDENTIALS.md",
        min_length=1,
        description="Gets the `credentials` section: Key Vault key names, never values.",
    )


class Docs(Model):
    """How the documents are rendered."""

    language: Literal["en", "ko"] = Field(
        default="en",
        description="Headings and labels in English (`en`) or Korean (`ko`, the seed's "
        "terms); the facts are the same.",
    )
    documents: DocumentPaths = Field(
        default_factory=DocumentPaths,
        description="The documents `docs --update` / `--check` use when none are named.",
    )
    databricks_secret_scope: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,128}$",
        description="The Databricks secret scope backed by the Key Vault (created with "
        "`databricks secrets create-scope --scope-backend-type AZURE_KEYVAULT`); default: "
        "the vault's name.",
    )
