"""The ``langfuse`` smoke against the emulator with the real ``langfuse`` SDK: after applying
the repository's desired state it reaches LangFuse at ``langfuse-internal``'s in-cluster name,
writes a trace and reads it back (PASS, with the route and the trace as evidence). Faults:
LangFuse keys in Key Vault not matching LangFuse (a new ``langfuse-secret-key`` written after
apply) FAILs naming the 401 and the mismatch, with no key in the report or the logs; the
Service deleted, the web scaled to zero and a trace never readable FAIL naming that; outside
the cluster on Azure (the name does not resolve) it SKIPs saying where to run it."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from kubernetes import client as k8s

from nsc_reconcile import load_desired_state
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport, smoke_langfuse
from nsc_reconcile.verification.netview import Resolution
from tests.conftest import verify_on
from tests.paths import DESIRED_STATE

CHECK = "smoke-langfuse/langfuse-internal"
NAME = "langfuse-internal.langfuse.svc.cluster.local"


def _smoke(state: DesiredState, emu: Emulator) -> VerifyReport:
    return verify_on(state, emu, smoke=["langfuse"])


def _every_format(report: VerifyReport) -> str:
    from nsc_reconcile.verify_report import render_verify

    return "\n".join(render_verify(report, f) for f in ("text", "json", "markdown", "junit"))


def _key_values(vault: SecretClient) -> list[str]:
    return [str(vault.get_secret(n).value) for n in ("langfuse-public-key", "langfuse-secret-key")]


def test_after_apply_a_trace_goes_in_and_comes_back(
    applied: DesiredState,
    emu: Emulator,
    vault_client: SecretClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    report = _smoke(applied, emu)
    check = report.get(CHECK)
    assert check.status is Status.PASS, check
    evidence = check.evidence
    assert f"{NAME} = 10.0.0." in evidence
    assert f"http://{NAME}:3000 via 127.0.0.1:" in evidence
    assert "(route 10.0.0." in evidence
    assert "health OK (LangFuse 3." in evidence
    assert "keys langfuse-public-key/langfuse-secret-key from Key Vault accepted" in evidence
    trace_id = evidence.split("trace ")[1].split(" ")[0]
    assert len(trace_id) == 32
    assert f"trace {trace_id} read back after" in evidence
    assert "name nsc-verify-smoke-" in evidence
    # The trace really is in LangFuse, as written (read with the emulator's own store).
    assert emu.langfuse is not None
    web = emu.langfuse.web("langfuse", "langfuse")
    assert web is not None
    stored = web.store.trace("nsc-ai-agent-dev", trace_id)
    assert stored is not None
    assert stored["name"].startswith("nsc-verify-smoke-")
    assert stored["tags"] == ["nsc-reconcile-verify"]
    for value in _key_values(vault_client):
        assert value not in _every_format(report)
        assert value not in caplog.text


def test_keys_in_key_vault_not_matching_langfuse_fail_with_401(
    applied: DesiredState,
    emu: Emulator,
    vault_client: SecretClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old_secret = str(vault_client.get_secret("langfuse-secret-key").value)
    vault_client.set_secret("langfuse-secret-key", "sk-lf-rotated-in-key-vault-only-0123")
    caplog.set_level(logging.DEBUG)
    report = _smoke(applied, emu)
    check = report.get(CHECK)
    assert check.status is Status.FAIL, check
    assert check.detail == (
        "HTTP 401 Invalid credentials. Confirm that you've configured the correct host.: the "
        "keys in Key Vault (langfuse-public-key, langfuse-secret-key) do not match LangFuse's "
        "project keys (LangFuse keeps the keys of its first start)"
    )
    assert "health OK" in check.evidence  # it got that far: reached, healthy, keys refused
    for check_id in ("langfuse-internal/langfuse", "langfuse-ready/langfuse"):
        assert report.get(check_id).status is Status.PASS
    rendered = _every_format(report)
    for value in [*_key_values(vault_client), old_secret]:
        assert value not in rendered
        assert value not in caplog.text


def test_service_deleted_fails_naming_it(
    applied: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    k8s.CoreV1Api(kube).delete_namespaced_service("langfuse-internal", "langfuse")
    check = _smoke(applied, emu).get(CHECK)
    assert check.status is Status.FAIL
    assert check.detail == (
        f"{NAME} does not resolve (NXDOMAIN): no Service langfuse-internal in namespace langfuse"
    )


def test_web_scaled_to_zero_fails_with_nothing_answering(
    applied: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    apps = k8s.AppsV1Api(kube)
    apps.patch_namespaced_deployment("langfuse", "langfuse", {"spec": {"replicas": 0}})
    check = _smoke(applied, emu).get(CHECK)
    assert check.status is Status.FAIL
    assert check.detail.startswith("nothing answers at 10.0.0.")
    assert check.detail.endswith(
        ":3000: no ready LangFuse web pod behind Service langfuse-internal on port 3000"
    )


def test_trace_never_readable_fails_after_the_bound(
    applied: DesiredState, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert emu.langfuse is not None
    emu.langfuse.visible_after_seconds = 30.0  # LangFuse's worker far behind
    monkeypatch.setattr(smoke_langfuse, "READ_TIMEOUT_S", 0.5)
    check = _smoke(applied, emu).get(CHECK)
    assert check.status is Status.FAIL
    assert check.detail.startswith("trace ")
    assert " not readable after 0.5 s (" in check.detail
    assert "sent over OTLP" in check.evidence


def test_outside_the_cluster_on_azure_it_skips() -> None:
    """On Azure, from a runner in the VNet but not in the cluster, the cluster DNS name does
    not resolve: SKIP, saying to run it from AKS (nothing is dialled, no key is read)."""
    state = load_desired_state(DESIRED_STATE)
    asked: list[str] = []

    def resolve(name: str) -> Resolution:
        asked.append(name)
        return Resolution(name, "NXDOMAIN", (), ())

    def no_secret(name: str) -> str:
        raise AssertionError(f"read {name}")

    network = SimpleNamespace(resolver=None, emulated=False, resolve=resolve)
    run: Any = SimpleNamespace(state=state, network=network, origin="runner",
                               secret_value=no_secret)  # fmt: skip
    [check] = smoke_langfuse.smoke_langfuse(run)
    assert asked == [NAME]
    assert check.status is Status.SKIP
    assert (
        check.detail == "cluster DNS name not resolvable from here; run verify --smoke --from aks"
    )
    assert f"{NAME} = NXDOMAIN" in check.evidence
