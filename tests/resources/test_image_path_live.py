"""The ACR image path of the repository's desired state, with the real clients against the
emulator: on an empty registry the plan creates each of the six declared images, apply imports
them (pinned by their published digests) before the workload that runs them, the Deployments
and StatefulSets run the registry's copies by digest, and a rerun writes nothing. A reference
to an undeclared image, or an image given in both forms, is refused when the file is loaded,
naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

import nsc_reconcile
from nsc_reconcile import DesiredStateError, load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.registry import public_digest
from nsc_reconcile.graph import build_graph
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from tests.conftest import write_requests

Ctl = Callable[..., Any]
SERVER = "nscacrdev.azurecr.io"
# label -> (repository, tag): what desired_state.yaml declares.
IMAGES = {
    "langfuse-web": ("langfuse/langfuse", "3"),
    "langfuse-worker": ("langfuse/langfuse-worker", "3"),
    "clickhouse": ("clickhouse/clickhouse-server", "24.12-alpine"),
    "valkey": ("valkey/valkey", "8"),
    "minio": ("minio/minio", "RELEASE.2025-04-22T22-12-26Z"),
    "smoke-python": ("library/python", "3.12-slim"),
}
ADDRESSES = [f"container_image/{label}" for label in IMAGES]


def _pinned(label: str) -> str:
    repository, tag = IMAGES[label]
    return f"{SERVER}/{repository}:{tag}@{public_digest(repository, tag)}"


def _held(emu: Emulator) -> dict[str, dict[str, str]]:
    for registry, held in emu.world.images.items():
        if registry.endswith("/registries/nscacrdev"):
            return held
    return {}


def test_the_declared_images_are_pinned_by_their_published_digests(
    desired_state: DesiredState,
) -> None:
    declared = {i.name: (i.repository, i.tag, i.digest) for i in desired_state.container_images}
    assert declared == {
        label: (repo, tag, public_digest(repo, tag)) for label, (repo, tag) in IMAGES.items()
    }
    # the recorded digests, not the emulator's synthetic ones
    assert declared["langfuse-web"][2] == (
        "sha256:4bc041b8b47e62d06792ed863d8803ba32f612a8d4e6d539a059e5dc921345c6"
    )
    graph, issues = build_graph(desired_state)
    assert issues == []
    needs = graph.depends_on["kubernetes_workload/langfuse"]
    assert {a for a in ADDRESSES if a != "container_image/smoke-python"} <= needs


def test_plan_imports_each_image_then_the_workload_runs_the_registry_copies_by_digest(
    emu: Emulator, desired_state: DesiredState, clients: Clients, ctl: Ctl, kube: k8s.ApiClient
) -> None:
    emu.world.images.clear()
    plan = nsc_reconcile.plan(desired_state, clients)
    actions = {r.address: r.action for r in plan.resources if r.address in ADDRESSES}
    assert actions == dict.fromkeys(ADDRESSES, Action.CREATE)

    result = nsc_reconcile.apply(plan, desired_state, clients)
    assert result.ok, result.render()
    outcomes = {r.address: r.outcome for r in result.resources if r.address in ADDRESSES}
    assert outcomes == dict.fromkeys(ADDRESSES, Outcome.CREATED)
    held = _held(emu)
    for repository, tag in IMAGES.values():
        assert held[repository] == {tag: public_digest(repository, tag)}

    apps: Any = k8s.AppsV1Api(kube)
    running = {
        d.metadata.name: d.spec.template.spec.containers[0].image
        for d in apps.list_namespaced_deployment("langfuse").items
    }
    assert running == {
        "langfuse": _pinned("langfuse-web"),
        "langfuse-worker": _pinned("langfuse-worker"),
    }
    stateful = {
        s.metadata.name: s.spec.template.spec.containers[0].image
        for s in apps.list_namespaced_stateful_set("langfuse").items
    }
    assert stateful == {
        "langfuse-clickhouse": _pinned("clickhouse"),
        "langfuse-redis": _pinned("valkey"),
        "langfuse-minio": _pinned("minio"),
    }

    ctl("DELETE", "requests")
    again = nsc_reconcile.plan(desired_state, clients)
    assert [r.address for r in again.changes] == []
    assert {r.action for r in again.resources if r.address in ADDRESSES} == {Action.UNCHANGED}
    rerun = nsc_reconcile.apply(again, desired_state, clients)
    assert rerun.ok, rerun.render()
    assert write_requests(ctl) == []
    heads = {r["path"] for r in ctl("GET", "requests") if r["method"] == "HEAD"}
    # each image was read on the registry's data plane (plan and apply), not skipped
    assert heads == {f"/v2/{repo}/manifests/{tag}" for repo, tag in IMAGES.values()}


def _load(tmp_path: Path, text: str) -> DesiredStateError:
    path = tmp_path / "desired_state.yaml"
    path.write_text(text)
    with pytest.raises(DesiredStateError) as failed:
        load_desired_state(path)
    return failed.value


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("declared", "field"),
    [
        ("    image: {container_image: langfuse-web}", "langfuse.web.image.container_image"),
        ("  image: {container_image: smoke-python}", "smoke.image.container_image"),
    ],
)
def test_an_undeclared_image_label_is_refused_naming_the_field(
    seed_text: str, tmp_path: Path, declared: str, field: str
) -> None:
    text = seed_text.replace(declared, declared.replace("}", "-typo}"))
    error = _load(tmp_path, text)
    [problem] = error.problems
    assert problem.field == field
    assert "container_image/" in problem.message
    assert "-typo, which is not declared" in problem.message
    assert "declared container_image: clickhouse, langfuse-web" in problem.message
    assert problem.location is not None
    assert problem.location.line == _line(text, "-typo}")


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (
            '{container_image: valkey, registry: "nscacr${env}"}',
            "not both: remove registry",
        ),
        ("{repository: valkey/valkey, tag: '8'}", "registry missing"),
    ],
)
def test_an_image_in_both_forms_or_half_of_one_is_refused(
    seed_text: str, tmp_path: Path, image: str, says: str
) -> None:
    text = seed_text.replace("    image: {container_image: valkey}", f"    image: {image}")
    error = _load(tmp_path, text)
    [problem] = error.problems
    assert problem.field == "langfuse.redis.image"
    assert says in problem.message
    assert problem.location is not None
    assert problem.location.line == _line(text, image)
