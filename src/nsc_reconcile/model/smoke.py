"""Where ``verify --smoke --from aks|databricks`` runs its connectivity checks from inside the
network: the image of the Kubernetes Job (from the existing ACR) and its namespace, and the
Databricks workspace of the one-time run. Read by verification only; nothing here is created
by ``apply``.
"""

from __future__ import annotations

from pydantic import Field

from nsc_reconcile.model.base import Model, Reference
from nsc_reconcile.model.images import Image
from nsc_reconcile.model.workload import K8sName


class DatabricksSmoke(Model):
    """The Databricks workspace a one-time run (Jobs API `runs/submit`) goes to."""

    workspace_url: str = Field(
        pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$",
        description="Workspace URL, e.g. `https://adb-1234567890123456.7.azuredatabricks.net`.",
    )
    token_secret: str = Field(
        default="databricks-agent-token",
        description="Key Vault secret holding the workspace token the run is submitted with.",
    )
    secret_scope: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,128}$",
        description="Key Vault-backed secret scope over the desired state's vault: the run's "
        "credentials are `{{secrets/<scope>/<secret>}}` references, never values. Default: "
        "`docs.databricks_secret_scope`, else the vault's name.",
    )
    spark_version: str = Field(
        default="15.4.x-scala2.12", description="Runtime of the run's single-node job cluster."
    )
    node_type_id: str = Field(
        default="Standard_D4ds_v5", description="VM size of the run's single-node job cluster."
    )
    timeout_seconds: int = Field(
        default=1200,
        ge=60,
        le=7200,
        description="Longest the one-time run may take, job cluster start included (minutes "
        "on Databricks).",
    )
    workspace_dir: str = Field(
        default="/Shared/nsc-reconcile",
        pattern=r"^/[^\s]*$",
        description="Workspace folder the check's script is uploaded to (removed after).",
    )


class Smoke(Model):
    """The in-network smoke run (`verify --smoke --from aks|databricks`)."""

    namespace: K8sName | None = Field(
        default=None,
        description="Namespace of the smoke Job; default: the LangFuse namespace, whose "
        "Secret already holds the PostgreSQL password and the LangFuse keys.",
    )
    image: Image = Field(
        description="Python image of the smoke Job, from the existing ACR (any Python >= 3.9 "
        "image; the check is one standard-library script), e.g. `library/python:3.12-slim`: "
        "best `{container_image: <label>}`, an image apply imports and the Job runs by digest."
    )
    timeout_seconds: int = Field(
        default=180,
        ge=30,
        le=3600,
        description="Longest the smoke Job may take (its `activeDeadlineSeconds`).",
    )
    databricks: DatabricksSmoke | None = Field(
        default=None, description="The Databricks workspace (`--from databricks`)."
    )

    def references(self) -> list[Reference]:
        """What the smoke refers to (paths under `smoke`): checked when the file is loaded, not
        ordered (the Job runs at verify, after apply)."""
        return self.image.references(("image",))
