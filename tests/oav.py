"""Validating recorded traffic with Microsoft's oav (LiveValidator) against the spec pack (the
pinned Azure REST API specification files of tests/spec_pack/spec-pack.lock), for the tests that
need it.

The pack is ``$NSC_AZURE_SPECS`` when set (it must hold ``specification/``), else
``<repo>/../shared/azure-specs``, else ``~/.cache/nsc-reconcile/azure-specs`` (where
``scripts/fetch-specs`` puts it). Tests take it through the ``spec_pack`` fixture, which skips
them, with the reason, when there is none. Once there is a pack, a missing node or oav fails the
test (never skips). The validator is the pack's own ``validate_traffic.js`` when it has one, else
our copy in tests/spec_pack/ (a fetched pack holds the specification files only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile.emulator.traffic import export_exchanges
from tests.paths import ROOT

PACK_ENV = "NSC_AZURE_SPECS"
SHARED_PACK = ROOT.parent / "shared" / "azure-specs"
CACHED_PACK = Path.home() / ".cache" / "nsc-reconcile" / "azure-specs"
VALIDATOR = ROOT / "tests" / "spec_pack" / "validate_traffic.js"
LOCK = ROOT / "tests" / "spec_pack" / "spec-pack.lock"
OAV_MODULE = os.environ.get(
    "OAV_MODULE", str(Path.home() / ".cache" / "nsc-reconcile" / "oav" / "node_modules" / "oav")
)
OAV_INSTALL = "./scripts/setup (or: npm install --prefix $HOME/.cache/nsc-reconcile/oav oav@4.0.3)"
# SDK api-version -> the newest one the pack holds for that service.
API_VERSION_MAP = "2026-03-01=2026-01-01,2026-10-01=2025-08-01,2026-05-15=2025-05-01,2026-04-01=7.6"


# Where a recorded real session contradicts the specification, the recording wins and oav's
# complaint is reported as a known deviation instead of a failure: (operationId, status, oav
# detail) -> the recording that shows it (tests/conformance/recordings).
RECORDED_OVER_SPEC = {
    (
        "PrivateEndpoints_Get",
        "404",
        "OBJECT_ADDITIONAL_PROPERTIES at $.error: Additional properties not allowed: error",
    ): "Test_Networking_PrivateEndpoint_CRUD #44, _WithoutAutoApproval_CRUD #26: "
    "404 bodies use the {error: {...}} envelope",
    (
        "ActionGroups_Get",
        "404",
        "OBJECT_ADDITIONAL_PROPERTIES at $.error: Additional properties not allowed: error",
    ): "Test_Insights_ActionGroup_v20230101_CRUD #9: 404 body uses the {error: {...}} envelope",
}


@dataclass(frozen=True)
class SpecPack:
    root: Path  # holds specification/...
    validator: Path


def find_spec_pack() -> SpecPack | None:
    """The spec pack to validate against, or None when there is none (see the module doc)."""
    explicit = os.environ.get(PACK_ENV)
    for root in [Path(explicit)] if explicit else [SHARED_PACK, CACHED_PACK]:
        if (root / "specification").is_dir():
            own = root / "validate_traffic.js"
            return SpecPack(root, own if own.is_file() else VALIDATOR)
    return None


def require_spec_pack() -> SpecPack:
    """The spec pack; skips the calling test, saying where it looked, when there is none."""
    pack = find_spec_pack()
    if pack is None:
        explicit = os.environ.get(PACK_ENV)
        where = f"{PACK_ENV}={explicit}" if explicit else f"{SHARED_PACK} or {CACHED_PACK}"
        pytest.skip(
            f"spec pack not found at {where} (no specification/ folder): "
            f"set {PACK_ENV} or run scripts/fetch-specs"
        )
    return pack


@dataclass
class Verdict:
    passed: list[str]
    failed: list[str]
    unknown: list[str]
    details: list[str]  # oav's lines explaining each failure
    output: str
    deviations: list[str]  # FAILs that are RECORDED_OVER_SPEC: the real service answers so


def _split_recorded_deviations(lines: list[str]) -> tuple[list[str], list[str]]:
    """Take out the FAIL entries (a FAIL line and its indented details) whose every detail is a
    known RECORDED_OVER_SPEC deviation of that operation and status; they become one
    "RECORDED" line each."""
    kept: list[str] = []
    deviations: list[str] = []
    entries: list[list[str]] = []
    for line in lines:
        if line.startswith("    ") and entries:
            entries[-1].append(line)
        else:
            entries.append([line])
    for entry in entries:
        head, details = entry[0], [d.strip() for d in entry[1:]]
        known = {
            detail: reason
            for (operation, status, detail), reason in RECORDED_OVER_SPEC.items()
            if f"[{operation}]" in head and f"-{status}.json" in head
        }
        if head.startswith("FAIL") and details and all(d in known for d in details):
            reasons = sorted({known[d] for d in details})
            deviations.append("RECORDED " + head[len("FAIL ") :] + " -- " + "; ".join(reasons))
            continue
        kept.extend(entry)
    return kept, deviations


def validate_requests(pack: SpecPack, requests: list[dict[str, Any]], folder: Path) -> Verdict:
    """Export ``requests`` (an emulator request log) to ``folder`` and validate them."""
    node = shutil.which("node")
    assert node, "node is needed for the oav traffic validation"
    assert Path(OAV_MODULE).is_dir(), f"oav 4.0.3 not found at {OAV_MODULE}; run {OAV_INSTALL}"
    written = export_exchanges(requests, folder)
    assert written, "no exchange to validate"
    run = subprocess.run(
        [node, str(pack.validator), str(folder), str(pack.root)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OAV_MODULE": OAV_MODULE, "API_VERSION_MAP": API_VERSION_MAP},
        check=False,
    )
    lines, deviations = _split_recorded_deviations(run.stdout.splitlines())
    verdict = Verdict(
        passed=[line for line in lines if line.startswith("PASS")],
        failed=[line for line in lines if line.startswith("FAIL")],
        unknown=[line for line in lines if line.startswith("UNKNOWN")],
        details=[line for line in lines if line.startswith("    ")],
        output=run.stdout[-3000:] + run.stderr[-3000:],
        deviations=deviations,
    )
    summary = [
        f"oav: {len(verdict.passed)} passed, {len(verdict.failed)} failed, "
        f"{len(verdict.deviations)} as recorded against the spec, "
        f"{len(verdict.unknown)} without a specification in the pack:",
        *verdict.unknown,
        *verdict.deviations,
    ]
    print("\n".join(summary))
    report = os.environ.get("NSC_OAV_REPORT")  # .ci/run prints it after the tests
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write("\n".join([f"== {folder.parent.name}", *summary, ""]))
    assert run.returncode in (0, 1), verdict.output  # 1 = some FAIL; anything else broke
    return verdict
