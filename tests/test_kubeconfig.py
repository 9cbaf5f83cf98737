"""AKS credentials for the Kubernetes client (``nsc_reconcile.kubeconfig`` through
``Clients.kubernetes_api_client``): a kubelogin exec plugin's server id and tenant are honoured
(the token is asked for that server application, in that tenant), the token is renewed on a long
run, client certificates are used, and no CA or key file is left behind once the run closes."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from azure.core.credentials import AccessToken
from kubernetes import client as k8s

from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import AKS_NAME, RESOURCE_GROUP, baseline_ids
from nsc_reconcile.kubeconfig import (
    AKS_SERVER_APP_ID,
    EntraLogin,
    entra_login,
    kubernetes_configuration,
)
from tests.conftest import control

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


class RecordingCredential:
    """A TokenCredential that records what it was asked for; each token is new."""

    def __init__(self, lifetime_s: int = 3600) -> None:
        self.lifetime_s = lifetime_s
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        del claims, enable_cae, kwargs
        self.calls.append((scopes, tenant_id))
        return AccessToken(f"token-{len(self.calls)}", int(time.time()) + self.lifetime_s)


def _clients(emu: Emulator, credential: RecordingCredential) -> Clients:
    target = AzureTarget.for_emulator(emu.info["arm"])
    target.credential = credential
    return Clients(target)


def _entra_cluster(emu: Emulator) -> None:
    """The baseline AKS as an Entra ID (managed AAD) cluster."""
    aks = baseline_ids()["aks"]
    cluster = control(emu, "GET", f"state?id={aks}")
    cluster["properties"]["aadProfile"] = {"managed": True, "tenantID": TENANT}
    control(emu, "PUT", f"state?id={aks}", cluster)


def _kube_authorizations(emu: Emulator) -> list[str]:
    log = control(emu, "GET", "requests")
    return [
        e["request_headers"].get("authorization", "") for e in log if e["plane"] == "kubernetes"
    ]


def test_a_kubelogin_exec_plugin_is_honoured_for_its_server_id_and_tenant(emu: Emulator) -> None:
    _entra_cluster(emu)
    credential = RecordingCredential()
    clients = _clients(emu, credential)
    plugin = clients.kubeconfig(RESOURCE_GROUP, AKS_NAME)["users"][0]["user"]["exec"]
    assert plugin["command"] == "kubelogin"  # what listClusterUserCredential gives AAD clusters
    assert "--server-id" in plugin["args"]

    credential.calls.clear()
    api = clients.kubernetes_api_client(RESOURCE_GROUP, AKS_NAME)
    control(emu, "DELETE", "requests")
    namespaces: Any = k8s.CoreV1Api(api).list_namespace()
    assert "default" in [n.metadata.name for n in namespaces.items]
    # One token, for the AKS server application named by --server-id, in the cluster's tenant
    # (--tenant-id); that token is what the API server received.
    assert credential.calls == [((f"{AKS_SERVER_APP_ID}/.default",), TENANT)]
    assert _kube_authorizations(emu) == ["Bearer token-1"]


def test_the_token_is_renewed_before_it_expires_on_a_long_run(emu: Emulator) -> None:
    _entra_cluster(emu)
    credential = RecordingCredential(lifetime_s=60)  # within the renewal margin at once
    clients = _clients(emu, credential)
    api = clients.kubernetes_api_client(RESOURCE_GROUP, AKS_NAME)
    control(emu, "DELETE", "requests")
    core: Any = k8s.CoreV1Api(api)
    core.list_namespace()
    core.list_namespace()
    sent = _kube_authorizations(emu)
    assert len(sent) == 2
    assert sent[0] != sent[1]
    assert all(s.startswith("Bearer token-") for s in sent)


def test_a_custom_server_id_and_the_legacy_azure_provider_are_read() -> None:
    exec_user = {
        "exec": {
            "command": "/usr/local/bin/kubelogin",
            "args": ["get-token", "--server-id=11111111-2222-3333-4444-555555555555",
                     "--tenant-id", TENANT, "--login", "azurecli"],
        }
    }  # fmt: skip
    assert entra_login(exec_user) == EntraLogin("11111111-2222-3333-4444-555555555555", TENANT)
    legacy = {
        "auth-provider": {"name": "azure", "config": {"apiserver-id": "abc", "tenant-id": "t"}}
    }
    assert entra_login(legacy) == EntraLogin("abc", "t")
    assert entra_login({"token": "static"}) is None
    other = {"exec": {"command": "aws", "args": ["eks", "get-token"]}}
    assert entra_login(other) is None


def test_client_certificates_are_used_and_no_file_outlives_the_run(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator's Key Vault listener speaks TLS with the emulator's CA: here it stands in
    # for an HTTPS API server (only the TLS handshake matters).
    ca_pem = Path(str(emu.info["ca_cert"])).read_bytes()
    client_cert = trustme.CA().issue_cert("nsc-reconcile-client")
    cert_pem = client_cert.cert_chain_pems[0].bytes()
    key_pem = client_cert.private_key_pem.bytes()
    kubeconfig = {
        "current-context": "aks",
        "contexts": [{"name": "aks", "context": {"cluster": "aks", "user": "admin"}}],
        "clusters": [{"name": "aks", "cluster": {
            "server": str(emu.info["keyvault"]),
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        }}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": base64.b64encode(cert_pem).decode(),
            "client-key-data": base64.b64encode(key_pem).decode(),
        }}],
    }  # fmt: skip
    credential = RecordingCredential()
    clients = _clients(emu, credential)
    clients.target.kubernetes_url = None  # use the kubeconfig's server and CA
    clients.target.ca_cert = None
    monkeypatch.setattr(clients, "kubeconfig", lambda *_: kubeconfig)

    api = clients.kubernetes_api_client(RESOURCE_GROUP, AKS_NAME)
    configuration = api.configuration
    assert configuration.ssl_ca_cert is None  # the CA is handed over as data: no CA file
    assert configuration.ca_cert_data == ca_pem.decode()
    assert Path(configuration.cert_file).read_bytes() == cert_pem
    assert Path(configuration.key_file).read_bytes() == key_pem
    assert oct(Path(configuration.key_file).stat().st_mode & 0o777) == "0o600"
    assert credential.calls == []  # a client certificate needs no Entra ID token
    with pytest.raises(k8s.ApiException) as raised:
        k8s.VersionApi(api).get_code()
    assert raised.value.status != 0  # an HTTP answer: the TLS handshake with that CA worked

    clients.close()
    assert not os.path.exists(configuration.cert_file)
    assert not os.path.exists(configuration.key_file)


def test_configuration_for_a_custom_server_id_asks_for_that_application() -> None:
    credential = RecordingCredential()
    kubeconfig = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://aks.example.invalid:443"}}],
        "users": [{"name": "u", "user": {"exec": {"command": "kubelogin", "args": [
            "get-token", "--server-id", "11111111-2222-3333-4444-555555555555"]}}}],
    }  # fmt: skip
    configuration = kubernetes_configuration(
        kubeconfig, credential, files_dir=lambda: "/nonexistent"
    )
    assert credential.calls == [(("11111111-2222-3333-4444-555555555555/.default",), None)]
    assert configuration.api_key["BearerToken"] == "Bearer token-1"
    assert configuration.host == "https://aks.example.invalid:443"
