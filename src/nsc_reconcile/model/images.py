"""Container images the workload runs, mirrored into the existing registry (ACR) from their
public registry and pinned by manifest digest. Imports no SDK.
"""

from __future__ import annotations

from pydantic import Field

from nsc_reconcile.model.base import Reference, Resource

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class ContainerImage(Resource):
    """One image `<repository>:<tag>` in the registry, with exactly the manifest `digest`.
    `name` is the label of the image in this file. Missing: imported (`importImage`) from
    `<source_registry>/<repository>@<digest>`; another digest under the tag: imported again
    over it (mode Force)."""

    kind = "container_image"

    registry: str = Field(
        description="The existing container registry (`existing.container_registries`)."
    )
    repository: str = Field(
        pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
        description="The repository, in the registry and at the source (`langfuse/langfuse`; "
        "Docker Hub's official images are `library/<name>`).",
    )
    tag: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", description="The tag in the registry."
    )
    digest: str = Field(
        pattern=DIGEST_PATTERN,
        description="The image manifest's digest (`sha256:...`): what the tag must point to.",
    )
    source_registry: str = Field(
        default="docker.io",
        pattern=r"^[a-z0-9.-]+(?::[0-9]+)?$",
        description="The public registry the image is imported from.",
    )

    @property
    def reference(self) -> str:
        """``<repository>:<tag>``, as the registry and the workload name it."""
        return f"{self.repository}:{self.tag}"

    @property
    def source(self) -> str:
        """The pinned source image: ``<source_registry>/<repository>@<digest>``."""
        return f"{self.source_registry}/{self.repository}@{self.digest}"

    def references(self) -> list[Reference]:
        return [Reference(("registry",), f"container_registry/{self.registry}")]

    @property
    def details(self) -> str:
        return f"{self.reference} in {self.registry} ({self.digest[:19]})"
