"""Benchmark: emulator start-up and GET latency, against a bare stdlib HTTP server measured
in the same run (the baseline), through the real SDK and raw HTTP. Prints figures only; not a
test. Loopback only. Run: .venv/bin/python bench/emulator_latency.py [ROUNDS]
"""

from __future__ import annotations

import http.client
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP, VNET_NAME


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the emulator does: no 40 ms delayed-ACK stalls

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


def _raw_gets(host: str, port: int, path: str, rounds: int) -> list[float]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        connection.request("GET", path)
        connection.getresponse().read()
        times.append(time.perf_counter() - start)
    connection.close()
    return times


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(values) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def main(rounds: int = 500) -> None:
    baseline = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=baseline.serve_forever, daemon=True).start()
    base_times = _raw_gets("127.0.0.1", baseline.server_address[1], "/", rounds)

    start = time.perf_counter()
    emulator = Emulator("baseline").start()
    startup = time.perf_counter() - start
    arm = str(emulator.info["arm"])
    port = int(arm.rsplit(":", 1)[1])
    sub = emulator.info["subscription_id"]
    path = (
        f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
        f"virtualNetworks/{VNET_NAME}?api-version=2026-03-01"
    )
    emu_times = _raw_gets("127.0.0.1", port, path, rounds)
    clients = Clients(AzureTarget.for_emulator(arm))
    clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)  # warm up
    sdk_times = []
    for _ in range(rounds // 5):
        t0 = time.perf_counter()
        clients.network.virtual_networks.get(RESOURCE_GROUP, VNET_NAME)
        sdk_times.append(time.perf_counter() - t0)
    emulator.stop()
    baseline.shutdown()

    ratio = statistics.median(emu_times) / statistics.median(base_times)
    print(f"emulator start-up (baseline world, all planes): {startup * 1000:.0f} ms")
    print(f"baseline GET (bare stdlib server):  {_ms(base_times)}")
    print(f"emulator ARM GET (raw HTTP):        {_ms(emu_times)}  ratio {ratio:.2f}x baseline")
    print(f"emulator ARM GET (azure-mgmt SDK):  {_ms(sdk_times)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
