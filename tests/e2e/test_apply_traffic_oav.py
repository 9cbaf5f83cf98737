"""Our own requests, judged by Microsoft: the traffic of a full apply and a no-op plan of
desired_state.yaml is exported and validated with oav against the REST specifications of the
shared spec pack. Every exchange must pass; those without a specification are listed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from nsc_reconcile import apply, load_desired_state, plan
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.traffic import export_exchanges
from tests.emulator.test_traffic_validation import API_VERSION_MAP, OAV_INSTALL, OAV_MODULE, SPECS
from tests.paths import DESIRED_STATE


def test_apply_traffic_passes_oav(emu: Emulator, clients: Clients, tmp_path: Path) -> None:
    validator = SPECS / "validate_traffic.js"
    assert validator.is_file(), f"spec pack not found at {SPECS} (set NSC_AZURE_SPECS)"
    node = shutil.which("node")
    assert node, "node is needed for the oav traffic validation"
    assert Path(OAV_MODULE).is_dir(), f"oav not found at {OAV_MODULE}; install: {OAV_INSTALL}"

    state = load_desired_state(DESIRED_STATE)
    result = apply(plan(state, clients), state, clients)
    assert result.ok, result.render()
    assert not plan(state, clients).has_changes
    written = export_exchanges(emu.controls.requests(), tmp_path / "traffic")
    assert len(written) >= 80

    run = subprocess.run(
        [node, str(validator), str(tmp_path / "traffic")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OAV_MODULE": OAV_MODULE, "API_VERSION_MAP": API_VERSION_MAP},
        check=False,
    )
    lines = run.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    unknown = [line for line in lines if line.startswith("UNKNOWN")]
    print("\n".join(["exchanges without a specification in the pack:", *unknown]))
    details = [line for line in lines if line.startswith("    ")]
    assert not failed, "\n".join([*failed, *details[:40]])
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
