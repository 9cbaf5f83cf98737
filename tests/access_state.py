"""Test helper: the repository's desired state with or without its access sections (the
consumers' identities and grants), for tests that declare their own, and a small set of them."""

from __future__ import annotations

import re

from tests.paths import DESIRED_STATE

ACCESS_SECTIONS = ("user_assigned_identities", "role_assignments")
_TOP_LEVEL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


def without_consumers(text: str | None = None) -> str:
    """``text`` (default: desired_state.yaml) without its top-level ``ACCESS_SECTIONS``."""
    kept, skipping = [], False
    for line in (DESIRED_STATE.read_text() if text is None else text).splitlines(True):
        top = _TOP_LEVEL.match(line)
        if top is not None:
            skipping = top[1] in ACCESS_SECTIONS
        if not skipping:
            kept.append(line)
    return "".join(kept)


# An agent identity with its federated credential and three runtime grants: the secret key,
# the OpenAI account and the kubelet's AcrPull (tests add their own grants after it).
AGENT_ACCESS = """
user_assigned_identities:
  - name: id-agent-${env}
    federated_credentials:
      - name: fic-agent
        cluster: nsc-aks-${env}
        namespace: agents
        service_account: agent
role_assignments:
  - name: agent-reads-secret-key
    principal: {identity: "id-agent-${env}"}
    scope: key_vault_secret/langfuse-secret-key
    role: Key Vault Secrets User
  - name: agent-uses-openai
    principal: {identity: "id-agent-${env}"}
    scope: openai_account/nsc-aoai-${env}
    role: Cognitive Services OpenAI User
  - name: kubelet-pulls
    principal: {aks_kubelet: "nsc-aks-${env}"}
    scope: container_registry/nscacr${env}
    role: AcrPull
"""
