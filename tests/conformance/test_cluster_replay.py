"""The product reads the existing AKS cluster as real Azure answers it: the cluster's GET is
served from a recorded session (Test_AKS_ManagedCluster_20240402preview_CRUD, through
transport.py and the real ContainerServiceClient), and the federated credential's issuer, the
kubelet grant's principal and the Key Vault CSI add-on flag come out of that body."""

from __future__ import annotations

import re

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.kinds.containers import CLUSTER_TYPE
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.access import RoleAssignment
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.resources import reconciler_for
from nsc_reconcile.resources.access import RoleAssignmentReconciler, oidc_issuer
from tests.conformance.replay import load_recordings
from tests.conformance.test_product_replay import FAST, SUB, product_id, replaying
from tests.conformance.transport import bind
from tests.paths import DESIRED_STATE

RECORDING = next(r for r in load_recordings() if r.name.startswith("Test_AKS_ManagedCluster_"))
RECORDED_ID = f"{SUB}/asotest-rg-rqyixp/providers/{CLUSTER_TYPE}/asotest-mc-hkromt"
BODY = next(e.response for e in RECORDING.exchanges if e.step == "get")
CLUSTER = "aks_cluster/nsc-aks-dev"
CREDENTIAL = "federated_identity_credential/id-nsc-agent-dev/fic-nsc-agent"
KUBELET_GRANT = "role_assignment/kubelet-pulls-images"
CSI_FLAG = "properties.addonProfiles.azureKeyvaultSecretsProvider.enabled"


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


def test_recorded_issuer_has_the_form_the_emulator_makes() -> None:
    issuer = BODY["properties"]["oidcIssuerProfile"]["issuerURL"]
    assert re.fullmatch(
        r"https://westus3\.oic\.prod-aks\.azure\.com/[0-9a-f-]{36}/[0-9a-f-]{36}/", issuer
    )


def test_product_reads_identity_and_issuer_from_a_recorded_cluster(
    emu: Emulator, clients: Clients, state: DesiredState
) -> None:
    binding = bind(RECORDING, RECORDED_ID, product_id(state, clients, CLUSTER))
    binding.last_n = next(e.n for e in binding.exchanges if e.method == "PUT")  # next: the GET
    replay_clients, transport = replaying(emu, [binding])
    engine = Engine(state, replay_clients, retry=FAST)
    plan = engine.plan([CREDENTIAL, KUBELET_GRANT])
    assert binding.served, transport.log
    assert binding.served[0] == ("GET", 11), transport.log
    context = engine.context
    recorded = BODY["properties"]
    # The federated credential trusts the recorded issuer, trailing slash kept.
    assert oidc_issuer(context, "nsc-aks-dev") == recorded["oidcIssuerProfile"]["issuerURL"]
    # The AcrPull grant goes to the recorded kubelet identity's objectId (not its clientId).
    kubelet = recorded["identityProfile"]["kubeletidentity"]
    grant = engine.graph.nodes[KUBELET_GRANT]
    reconciler = reconciler_for(grant)
    assert isinstance(reconciler, RoleAssignmentReconciler)
    assert isinstance(grant, RoleAssignment)
    assert reconciler.principal_id(context, grant) == kubelet["objectId"]
    assert plan.get(KUBELET_GRANT) is not None
    # No azureKeyvaultSecretsProvider in the recorded add-ons: the CSI check reads "not true"
    # (workload.py refuses `secrets_delivery: csi`), while the add-on that is there is seen.
    live = context.live(CLUSTER)
    assert live is not None
    assert live.fields.get(CSI_FLAG) is None
    assert live.fields.get("properties.addonProfiles.azurepolicy.enabled") is True
