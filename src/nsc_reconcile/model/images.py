"""Container images the workload runs, mirrored into the existing registry (ACR) from their
public registry and pinned by manifest digest; and ``Image``, how the workload and the smoke
Job name one (a declared image by label, or registry, repository and tag). Imports no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile.model.base import FieldPath, Model, Reference, Resource

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
_LEGACY = ("registry", "repository", "tag")


class ContainerImage(Resource):
    """One image `<repository>:<tag>` in the registry, with exactly the manifest `digest`.
    `name` is the label of the image in this file. Missing: imported (`importImage`) from
    `<source_registry>/<repository>@<digest>`; another digest under the tag: imported again
    over it (mode Force). The workload and the smoke Job run it by its label:
    `image: {container_image: <name>}`."""

    kind = "container_image"

    registry: str = Field(
        description="The existing container registry (`existing.container_registries`)."
    )
    repository: str = Field(
        pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
        description="The repository, in the registry and at the source (`langfuse/langfuse`; "
        "Docker Hub's official images are `library/<name>`).",
    )
    tag: str = Field(pattern=TAG_PATTERN, description="The tag in the registry.")
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


class Image(Model):
    """A container image from the existing ACR, in exactly one of two forms:
    `{container_image: <label>}`, an image of `container_images` (imported by apply, run by
    digest as `<login server>/<repository>:<tag>@<digest>`), or `{registry, repository, tag}`
    (an image put in the registry by other means, run by tag)."""

    container_image: str | None = Field(
        default=None,
        description="Label of an image declared in `container_images`: the workload runs the "
        "registry's copy pinned by its digest, after apply imported it.",
    )
    registry: str | None = Field(
        default=None, description="Existing ACR (`container_registry/<name>`); tag form only."
    )
    repository: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$",
        description="Repository, e.g. langfuse/langfuse; tag form only.",
    )
    tag: str | None = Field(default=None, pattern=TAG_PATTERN, description="Tag; tag form only.")

    @model_validator(mode="after")
    def _one_form(self) -> Image:
        given = [name for name in _LEGACY if getattr(self, name) is not None]
        if self.container_image is not None and given:
            raise PydanticCustomError(
                "image_form",
                "an image is either {{container_image: <label>}} or {{registry, repository, "
                "tag}}, not both: remove {fields}",
                {"fields": ", ".join(given)},
            )
        if self.container_image is None and len(given) != len(_LEGACY):
            missing = [name for name in _LEGACY if name not in given]
            raise PydanticCustomError(
                "image_form",
                "an image is either {{container_image: <label>}} (a declared container image) "
                "or {{registry, repository, tag}}: {missing} missing",
                {"missing": ", ".join(missing)},
            )
        return self

    def references(self, at: FieldPath) -> list[Reference]:
        """The reference this image makes, ``at`` being its own path in the resource."""
        if self.container_image is not None:
            return [Reference((*at, "container_image"), f"container_image/{self.container_image}")]
        return [Reference((*at, "registry"), f"container_registry/{self.registry}")]

    def resolve(self, declared: Mapping[str, ContainerImage]) -> ImageRef | None:
        """Where the image is, from the declared ``container_images`` by label; None when the
        label is not declared (the graph reports that before any run)."""
        if self.container_image is None:  # _one_form: all three are set
            return ImageRef(str(self.registry), str(self.repository), str(self.tag), None)
        image = declared.get(self.container_image)
        if image is None:
            return None
        return ImageRef(image.registry, image.repository, image.tag, image.digest)


@dataclass(frozen=True)
class ImageRef:
    """An image resolved to its registry, repository, tag and (declared images) digest."""

    registry: str
    repository: str
    tag: str
    digest: str | None

    def on(self, login_server: str) -> str:
        """The image reference a container runs: ``<server>/<repository>:<tag>[@<digest>]``."""
        pinned = f"@{self.digest}" if self.digest else ""
        return f"{login_server}/{self.repository}:{self.tag}{pinned}"


def declared_images(images: list[ContainerImage]) -> dict[str, ContainerImage]:
    """Label -> declared image (``DesiredState.container_images``)."""
    return {image.name: image for image in images}
