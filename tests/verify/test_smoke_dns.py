"""The ``dns`` smoke against the emulator with the real DNS client: after applying the
repository's desired state every private endpoint's service name resolves, through the
emulator's DNS (the VNet's view), to the endpoint's NIC IP via its privatelink zone; a deleted
A record fails exactly that endpoint's check, naming what the name resolved to instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport
from tests.conftest import verify_on

SUB = "00000000-0000-0000-0000-00000000a1b2"
ZONE = (
    f"/subscriptions/{SUB}/resourceGroups/2dt-final-team4/providers/"
    "Microsoft.Network/privateDnsZones/privatelink.openai.azure.com"
)


def _smoke(state: DesiredState, emu: Emulator) -> VerifyReport:
    return verify_on(state, emu, smoke=["dns"])


def _smoke_checks(report: VerifyReport) -> dict[str, Any]:
    return {c.id: c for c in report.checks if c.id.startswith("smoke-dns/")}


def test_every_endpoint_name_resolves_to_its_nic_ip(applied: DesiredState, emu: Emulator) -> None:
    checks = _smoke_checks(_smoke(applied, emu))
    openai = checks["smoke-dns/nsc-pe-openai"]
    assert openai.status is Status.PASS, openai
    assert "nsc-aoai-dev.openai.azure.com -> CNAME nsc-aoai-dev.privatelink.openai.azure.com" in (
        openai.evidence
    )
    postgres = checks["smoke-dns/nsc-pe-pg-langfuse"]
    assert postgres.status is Status.PASS, postgres
    assert "privatelink.postgres.database.azure.com -> A 10." in postgres.evidence


def test_a_deleted_a_record_fails_that_endpoint_only(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    ctl("DELETE", f"state?id={ZONE}/A/nsc-aoai-dev")
    checks = _smoke_checks(_smoke(applied, emu))
    openai = checks["smoke-dns/nsc-pe-openai"]
    assert openai.status is Status.FAIL
    assert "does not resolve to an address (NXDOMAIN)" in openai.detail
    assert checks["smoke-dns/nsc-pe-pg-langfuse"].status is Status.PASS
