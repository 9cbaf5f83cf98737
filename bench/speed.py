"""Benchmark (issue 12 item 8): a no-op plan and an apply from the baseline, each run as the
CLI (a fresh process), against its bound, all measured side by side in ONE run:

- floor: process start + `import nsc_reconcile.cli` + the SDK modules the desired state needs
  (azure.SDK_MODULES of its reconcilers' clients), measured here, not assumed;
- no-op plan (after an apply of desired_state.yaml) at 0 ms and 50 ms per request (the
  emulator's latency_ms): wall time, requests, round trips on the critical path, and the ratio
  to the bound floor + 5 x latency;
- apply from the baseline world at 0 ms: wall time against floor + the LRO critical path (the
  longest dependency chain of the graph, each resource weighing the durations of the
  long-running operations it started).

Prints figures only; not a test (tests/engine/test_read_budget.py holds the structural checks).
Loopback only: the emulator runs in this process, the tool talks to it over 127.0.0.1.
Run: .venv/bin/python bench/speed.py [--repeat N] [--src DIR] (DIR: another source tree to
measure, e.g. a copy before a change; its `src` goes first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import SDK_MODULES, AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.resources import has_reconciler, reconciler_for

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "desired_state.yaml"
LATENCY_MS = 50.0
BOUND_ROUND_TRIPS = 5
# LRO durations of the apply run (seconds per ARM type; "*" for the rest): long enough that
# waiting on Azure dominates, as it does in real Azure (where they are minutes).
LRO_SECONDS = {"*": 0.5, "Microsoft.DBforPostgreSQL/flexibleServers": 3.0}


def _ctl(arm: str, method: str, what: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{arm}/_emulator/{what}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def _env(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
    return env


def _timed(argv: list[str], env: dict[str, str], expect: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in expect:
        raise SystemExit(f"{' '.join(argv[:4])}... exited {done.returncode}: {done.stderr[-600:]}")
    return seconds


def _sdk_modules() -> list[str]:
    """The SDK modules the desired state's reconcilers use (what a run must import)."""
    engine = Engine(load_desired_state(STATE), _unused_clients())
    names = {
        name
        for resource in engine.graph.nodes.values()
        if has_reconciler(resource)
        for name in reconciler_for(resource).sdk_clients
    }
    return sorted({m for name in names for m in SDK_MODULES[name]})


def _unused_clients() -> Clients:
    from nsc_reconcile.azure import StaticTokenCredential

    return Clients(AzureTarget(subscription_id="0", credential=StaticTokenCredential()))


def _sequential_depth(requests: list[dict[str, Any]]) -> int:
    """The longest chain of requests each starting after the previous one ended: how many
    round trips the log shows one after another (at a fixed latency: a lower bound of the
    critical path's time, an upper bound of its dependency depth)."""
    spans = sorted(
        (float(r["time"]), float(r["time"]) + float(r.get("duration_ms") or 0) / 1000)
        for r in requests
    )
    best: list[tuple[float, int]] = []  # (end, chain length) of chains so far
    for start, end in spans:
        before = [n for finished, n in best if finished <= start]
        best.append((end, 1 + max(before, default=0)))
    return max((n for _, n in best), default=0)


def _lro_critical_path(emulator: Emulator, engine: Engine) -> tuple[float, str]:
    """A lower bound of any apply's time spent waiting on long-running operations, and what
    sets it. Each operation the emulator ran counts for the resource whose id is the longest
    prefix of the operation's id (a zone group counts for its endpoint); the others (the apply
    lease's zone) come before every write. Then the longest dependency chain, or, where a
    single-writer scope (the kind's lock_key: the rules of one NSG) serializes writes, its
    one-at-a-time schedule (max over t of t + the durations of its members that cannot start
    before t), whichever is longer."""
    ids = {}
    for address, resource in engine.graph.nodes.items():
        if has_reconciler(resource):
            rid = reconciler_for(resource).resource_id(engine.context, resource)
            ids[rid.lower().rstrip("/")] = address
    weight: dict[str, float] = {}
    before = 0.0
    world = emulator.world
    for op in list(world.operations.values()):
        if op.verb != "put":
            continue
        rid = op.rid.lower()
        seconds = world.lro_duration(world.canonical_type(op.rid))
        owners = [i for i in ids if rid == i or rid.startswith(i + "/")]
        if owners:
            owner = ids[max(owners, key=len)]
            weight[owner] = weight.get(owner, 0.0) + seconds
        else:
            before += seconds
    start: dict[str, float] = {}  # earliest start after the dependencies' operations
    chain: dict[str, list[str]] = {}
    for address in engine.graph.order():
        deps = sorted(engine.graph.depends_on[address], key=lambda d: -_end(d, start, weight))
        start[address] = _end(deps[0], start, weight) if deps else 0.0
        chain[address] = [*(chain[deps[0]] if deps else []), address]
    last = max(start, key=lambda a: _end(a, start, weight))
    best, why = _end(last, start, weight), " -> ".join(chain[last])
    scopes: dict[str, list[str]] = {}
    for address, resource in engine.graph.nodes.items():
        key = reconciler_for(resource).lock_key(resource) if has_reconciler(resource) else None
        if key is not None and weight.get(address):
            scopes.setdefault(key, []).append(address)
    for key, members in scopes.items():
        for t in {start[m] for m in members}:
            serial = t + sum(weight[m] for m in members if start[m] >= t)
            if serial > best:
                best, why = serial, f"{len(members)} writes one at a time in {key}"
    return before + best, f"apply lease {before:.1f} s, then {why}"


def _end(address: str, start: dict[str, float], weight: dict[str, float]) -> float:
    return start[address] + weight.get(address, 0.0)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measurement")
    parser.add_argument("--src", type=Path, default=None, help="source tree to measure")
    args = parser.parse_args()
    env = _env(args.src)
    python = sys.executable
    modules = _sdk_modules()
    floor_code = "import nsc_reconcile.cli, " + ", ".join(modules)
    results: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    with Emulator("baseline") as emulator:
        arm = str(emulator.info["arm"])
        cli = [python, "-m", "nsc_reconcile"]
        chain = ""
        for _ in range(args.repeat):
            # Each run pairs every measurement with a floor taken next to it (the machine's
            # load drifts); ratios are per run, then their median is reported.
            note("start", _timed([python, "-c", "pass"], env))
            floor = _timed([python, "-c", floor_code], env)
            note("floor", floor)
            # apply from the baseline world, LRO durations as configured, no latency
            _ctl(arm, "POST", "reset")
            _ctl(arm, "POST", "config", {"lro_seconds": LRO_SECONDS, "latency_ms": 0})
            emulator.world.operations.clear()
            apply = _timed([*cli, "apply", str(STATE), f"--emulator={arm}", "--yes"], env)
            note("apply", apply)
            clients = Clients(AzureTarget.for_emulator(arm))
            engine = Engine(load_desired_state(STATE), clients)
            plan = engine.plan()  # also gives the resource ids their live parts (vault group)
            if plan.has_changes:
                raise SystemExit("apply did not converge: the plan after it has changes")
            lro, chain = _lro_critical_path(emulator, engine)
            note("lro", lro)
            note("apply ratio", apply / (floor + lro))
            # no-op plans at 0 ms and at LATENCY_MS per request
            walls = {}
            for latency in (0.0, LATENCY_MS):
                _ctl(arm, "POST", "config", {"latency_ms": latency})
                _ctl(arm, "DELETE", "requests")
                argv = [*cli, "plan", str(STATE), f"--emulator={arm}", "--detailed-exitcode"]
                walls[latency] = _timed(argv, env)
                note(f"plan{latency:g}", walls[latency])
                log = _ctl(arm, "GET", "requests")
                note(f"requests{latency:g}", len(log))
                if latency:
                    note("depth", _sequential_depth(log))
            floor_after = _timed([python, "-c", floor_code], env)
            note("floor", floor_after)
            floor_here = (floor + floor_after) / 2
            bound = floor_here + BOUND_ROUND_TRIPS * LATENCY_MS / 1e3
            note("plan ratio", walls[LATENCY_MS] / bound)
            note("rt", (walls[LATENCY_MS] - floor_here) / (LATENCY_MS / 1e3))
            note("rt0", (walls[LATENCY_MS] - walls[0.0]) / (LATENCY_MS / 1e3))
        _ctl(arm, "POST", "config", {"latency_ms": 0})

    _report(results, modules, chain, args.repeat, args.src)


def _report(
    results: dict[str, list[float]],
    modules: list[str],
    chain: str,
    repeat: int,
    src: Path | None,
) -> None:
    m: Callable[[str], float] = lambda key: _median(results[key])  # noqa: E731
    floor, latency = m("floor"), LATENCY_MS / 1000
    plan0, plan50 = m("plan0"), m(f"plan{LATENCY_MS:g}")
    print(f"source: {src or ROOT} (medians of {repeat} runs; ratios per run, each against "
          "floors measured next to it)")  # fmt: skip
    print(f"process start (python -c pass):         {m('start'):6.2f} s")
    print(f"floor (start + cli + {len(modules)} SDK modules):     {floor:6.2f} s")
    print(f"no-op plan at 0 ms:                      {plan0:6.2f} s  requests {m('requests0'):.0f}")
    print(f"no-op plan at {LATENCY_MS:g} ms:                     {plan50:6.2f} s  "
          f"requests {m(f'requests{LATENCY_MS:g}'):.0f}")  # fmt: skip
    print(f"  round trips on the critical path: (wall - floor) / latency = {m('rt'):.1f}; "
          f"(wall at {LATENCY_MS:g} - wall at 0) / latency = {m('rt0'):.1f}; requests one "
          f"after another in the log = {m('depth'):.0f}")  # fmt: skip
    print(f"  bound floor + {BOUND_ROUND_TRIPS} x {LATENCY_MS:g} ms = "
          f"{floor + BOUND_ROUND_TRIPS * latency:.2f} s; ratio {m('plan ratio'):.2f} "
          "(target <= 1.30)")  # fmt: skip
    print(f"apply from the baseline at 0 ms:         {m('apply'):6.2f} s")
    print(f"  LRO critical path {m('lro'):.2f} s ({chain})")
    print(f"  bound floor + LRO critical path = {floor + m('lro'):.2f} s; "
          f"ratio {m('apply ratio'):.2f} (target <= 1.10)")  # fmt: skip


if __name__ == "__main__":
    main()
