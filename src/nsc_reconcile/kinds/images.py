"""The image kind: container images mirrored into the existing registry, pinned by digest."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, register
from nsc_reconcile.model.images import ContainerImage
from nsc_reconcile.naming import RULES

register(
    KindSpec(
        kind="container_image",
        model=ContainerImage,
        reconciler="nsc_reconcile.resources.images:ContainerImageReconciler",
        # The label of the image in the file; in the registry it is `<repository>:<tag>`.
        name_rule=RULES["kubernetes_name"],
        collection=("container_images",),
        phase=104,  # before the grants (105) and the workload (110) that pulls them
        sdk_clients=("containerregistry",),
    )
)
