"""Validating recorded traffic with Microsoft's oav (LiveValidator) against the shared spec
pack, for the tests that need it. Fails (never skips) when node, oav or the pack is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsc_reconcile.emulator.traffic import export_exchanges
from tests.paths import ROOT

SPECS = Path(os.environ.get("NSC_AZURE_SPECS", ROOT.parent / "shared" / "azure-specs"))
OAV_MODULE = os.environ.get(
    "OAV_MODULE", str(Path.home() / ".cache" / "nsc-reconcile" / "oav" / "node_modules" / "oav")
)
OAV_INSTALL = "./scripts/setup (or: npm install --prefix $HOME/.cache/nsc-reconcile/oav oav@4.0.3)"
# SDK api-version -> the newest one the pack holds for that service.
API_VERSION_MAP = "2026-03-01=2026-01-01,2026-10-01=2025-08-01,2026-05-15=2025-05-01,2026-04-01=7.6"


@dataclass
class Verdict:
    passed: list[str]
    failed: list[str]
    unknown: list[str]
    details: list[str]  # oav's lines explaining each failure
    output: str


def validate_requests(requests: list[dict[str, Any]], folder: Path) -> Verdict:
    """Export ``requests`` (an emulator request log) to ``folder`` and validate them."""
    validator = SPECS / "validate_traffic.js"
    assert validator.is_file(), f"spec pack not found at {SPECS} (set NSC_AZURE_SPECS)"
    node = shutil.which("node")
    assert node, "node is needed for the oav traffic validation"
    assert Path(OAV_MODULE).is_dir(), f"oav 4.0.3 not found at {OAV_MODULE}; run {OAV_INSTALL}"
    written = export_exchanges(requests, folder)
    assert written, "no exchange to validate"
    run = subprocess.run(
        [node, str(validator), str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OAV_MODULE": OAV_MODULE, "API_VERSION_MAP": API_VERSION_MAP},
        check=False,
    )
    lines = run.stdout.splitlines()
    verdict = Verdict(
        passed=[line for line in lines if line.startswith("PASS")],
        failed=[line for line in lines if line.startswith("FAIL")],
        unknown=[line for line in lines if line.startswith("UNKNOWN")],
        details=[line for line in lines if line.startswith("    ")],
        output=run.stdout[-3000:] + run.stderr[-3000:],
    )
    summary = [
        f"oav: {len(verdict.passed)} passed, {len(verdict.failed)} failed, "
        f"{len(verdict.unknown)} without a specification in the pack:",
        *verdict.unknown,
    ]
    print("\n".join(summary))
    report = os.environ.get("NSC_OAV_REPORT")  # .ci/run prints it after the tests
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write("\n".join([f"== {folder.parent.name}", *summary, ""]))
    assert run.returncode in (0, 1), verdict.output  # 1 = some FAIL; anything else broke
    return verdict
