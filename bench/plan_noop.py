"""Benchmark: a no-op plan of desired_state.yaml (after apply) against the emulator, compared
with the baseline of issuing the same number of GETs one by one with the SDK in the same run.
Shows what parallel reads buy. Prints figures only; not a test. Loopback only.
Run: .venv/bin/python bench/plan_noop.py [PARALLELISM]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine

STATE = Path(__file__).resolve().parent.parent / "desired_state.yaml"


def main(parallelism: int = 8) -> None:
    state = load_desired_state(STATE)
    with Emulator("baseline") as emulator:
        emulator.controls.latency_ms = 20  # a network-like round trip
        clients = Clients(AzureTarget.for_emulator(str(emulator.info["arm"])))
        engine = Engine(state, clients, parallelism=parallelism)
        engine.apply(engine.plan())
        reads_before = len(emulator.controls.requests())
        t0 = time.perf_counter()
        plan = Engine(state, clients, parallelism=parallelism).plan()
        planned = time.perf_counter() - t0
        reads = len(emulator.controls.requests()) - reads_before
        assert not plan.has_changes
        t0 = time.perf_counter()
        for _ in range(reads):  # baseline: the same number of GETs, sequential
            clients.network.virtual_networks.get("2dt-final-team4", "nsc-vnet-dev")
        sequential = time.perf_counter() - t0
    print(f"resources in plan: {len(plan.resources)}, requests made: {reads}")
    print(f"no-op plan (parallelism {parallelism}): {planned:.2f} s")
    print(f"baseline, {reads} sequential GETs:     {sequential:.2f} s")
    print(f"ratio plan / baseline: {planned / sequential:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
