"""Running a workload's script on this machine as if it ran inside the emulated network (a pod of
the AKS cluster, a Databricks job cluster): a subprocess with a clean environment (nothing of
the emulator's own, no proxies), plus the network view of the VNet:

- ``NSC_SMOKE_DNS``: the emulator's DNS server (``127.0.0.1:PORT``), as the VNet's resolver;
- ``SSL_CERT_FILE``: the emulator's CA, which signs the service certificates;
- ``NSC_SMOKE_ROUTES``: JSON ``{"10.10.1.5:5432": "127.0.0.1:N"}``, the loopback address serving
  each private address the script may dial (curl ``--resolve`` style). Worked out before the
  script starts: every host name, address and port found in the plain (non-secret) settings
  is resolved through the DNS server and asked of ``Network.route``.

Used by the Kubernetes Job controller and the Databricks plane. Connects only to the
emulator's DNS server (loopback); the script itself is told where to connect.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nsc_reconcile.emulator.network import Network

__all__ = ["Handle", "Outcome", "Sandbox", "scan_endpoints"]

MAX_OUTPUT = 4 * 1024 * 1024  # bytes of output kept per run (the tail)
_MAX_HOSTS, _MAX_PORTS, _MAX_HOPS = 32, 16, 8
_SEPARATORS = re.compile(r"[\s,;\"'{}\[\]()]+")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$",
    re.IGNORECASE,
)
_SCHEME_PORTS = {"http": 80, "https": 443, "postgres": 5432, "postgresql": 5432}


@dataclass
class Outcome:
    """How one run ended: exit code (None: never started or killed), output, timing."""

    exit_code: int | None
    output: bytes
    timed_out: bool
    started: float
    finished: float
    killed: bool = False


class Handle:
    """One launched run: ``kill()`` stops it (before or after its process started)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False
        self._lock = threading.Lock()

    def attach(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self.process = process
            if self.killed:
                _kill(process)

    def kill(self) -> None:
        with self._lock:
            self.killed = True
            if self.process is not None and self.process.poll() is None:
                _kill(self.process)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def scan_endpoints(values: Iterable[str]) -> tuple[list[str], list[int]]:
    """Host names/addresses and ports named in ``values``: URLs (their host and port, or the
    scheme's), ``host:port``, bare host names and addresses, bare port numbers."""
    hosts: dict[str, None] = {}
    ports: dict[int, None] = {}
    for value in values:
        for token in _SEPARATORS.split(value):
            token = token.strip().rstrip(".")
            if not token:
                continue
            if "://" in token:
                parts = urllib.parse.urlsplit(token)
                try:
                    port = parts.port or _SCHEME_PORTS.get(parts.scheme.lower())
                except ValueError:
                    continue
                if parts.hostname:
                    hosts[parts.hostname.lower()] = None
                if port:
                    ports[port] = None
                continue
            if token.isdigit():
                if 0 < int(token) < 65536:
                    ports[int(token)] = None
                continue
            host, sep, port_text = token.rpartition(":")
            if sep and port_text.isdigit() and (_is_ip(host) or _HOST_NAME.match(host)):
                hosts[host.lower()] = None
                ports[int(port_text)] = None
            elif _is_ip(token) or _HOST_NAME.match(token):
                hosts[token.lower()] = None
    return list(hosts)[:_MAX_HOSTS], list(ports)[:_MAX_PORTS]


@dataclass
class Sandbox:
    """The emulated network's view for scripts, and the scripts running now (see module)."""

    network: Network | None = None
    ca_cert: str | None = None
    dns: tuple[str, int] | None = None
    _running: set[Handle] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the network view -------------------------------------------------------------------
    def network_env(self, plain_values: Iterable[str]) -> dict[str, str]:
        """``NSC_SMOKE_DNS``, ``SSL_CERT_FILE`` and ``NSC_SMOKE_ROUTES`` for a script whose
        plain settings are ``plain_values``. May take a moment: a route can start a server."""
        env: dict[str, str] = {}
        if self.ca_cert:
            env["SSL_CERT_FILE"] = self.ca_cert
        if self.dns is not None:
            env["NSC_SMOKE_DNS"] = f"{self.dns[0]}:{self.dns[1]}"
        env["NSC_SMOKE_ROUTES"] = json.dumps(self.routes(plain_values), sort_keys=True)
        return env

    def routes(self, plain_values: Iterable[str]) -> dict[str, str]:
        """``"address:port" -> "127.0.0.1:N"`` for every address the named hosts resolve to
        (through the emulator's DNS server) and every port named, where something listens."""
        if self.network is None:
            return {}
        hosts, ports = scan_endpoints(plain_values)
        routes: dict[str, str] = {}
        for host in hosts:
            for address in self.addresses(host):
                for port in ports:
                    route = self.network.route(address, port)
                    if route is not None:
                        routes[f"{address}:{port}"] = f"{route.to[0]}:{route.to[1]}"
        return routes

    def addresses(self, host: str) -> list[str]:
        """The A records of ``host`` from the emulator's DNS server (CNAMEs followed)."""
        if _is_ip(host):
            return [host]
        if self.dns is None:
            return []
        from dnslib import QTYPE, DNSRecord

        name, found = host, []
        for _ in range(_MAX_HOPS):
            try:
                raw = DNSRecord.question(name, "A").send(self.dns[0], self.dns[1], timeout=3)
            except OSError:
                return []
            answer = DNSRecord.parse(raw)
            target = None
            for record in answer.rr:
                if record.rtype == QTYPE.A:
                    found.append(str(record.rdata))
                elif record.rtype == QTYPE.CNAME:
                    target = str(record.rdata).rstrip(".")
            if found or target is None:
                return found
            name = target
        return found

    # -- running ----------------------------------------------------------------------------
    def launch(
        self,
        argv: Callable[[Path], list[str] | None],
        env: dict[str, str],
        plain_values: list[str],
        files: dict[str, bytes],
        timeout: float,
        on_start: Callable[[], None],
        on_exit: Callable[[Outcome], None],
        on_output: Callable[[bytes], None] | None = None,
    ) -> Handle:
        """Run in a thread: write ``files`` (relative paths) into a fresh directory, work out
        the network view, start ``argv(directory)`` (None: cannot run -> exit code None) with
        ``env`` + the view, kill it (its process group) after ``timeout`` seconds from now,
        then call ``on_exit``. ``on_output`` sees output as it comes. Returns a handle to
        kill it with."""
        deadline = time.monotonic() + timeout
        handle = Handle()
        with self._lock:
            self._running.add(handle)
        thread = threading.Thread(
            target=self._run,
            args=(handle, argv, env, plain_values, files, deadline, on_start, on_exit, on_output),
            name="emulator-sandbox",
            daemon=True,
        )
        thread.start()
        return handle

    def _run(
        self,
        handle: Handle,
        argv: Callable[[Path], list[str] | None],
        env: dict[str, str],
        plain_values: list[str],
        files: dict[str, bytes],
        deadline: float,
        on_start: Callable[[], None],
        on_exit: Callable[[Outcome], None],
        on_output: Callable[[bytes], None] | None,
    ) -> None:
        started = time.time()
        workdir = Path(tempfile.mkdtemp(prefix="nsc-emulator-run-"))
        try:
            for relative, content in files.items():
                path = workdir / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            command = argv(workdir)
            if command is None or handle.killed:
                on_exit(Outcome(None, b"", False, started, time.time()))
                return
            full_env = {
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "HOME": str(workdir),
                "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                **env,
            }
            full_env.update(self.network_env([*plain_values, *command[1:]]))
            on_start()
            outcome = self._execute(handle, command, full_env, workdir, deadline, on_output)
            on_exit(outcome)
        except Exception as error:  # never lose the run: report it as failed to start
            message = f"emulator: could not run: {type(error).__name__}: {error}\n".encode()
            on_exit(Outcome(None, message, False, started, time.time()))
        finally:
            with self._lock:
                self._running.discard(handle)
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(
        self,
        handle: Handle,
        command: list[str],
        env: dict[str, str],
        workdir: Path,
        deadline: float,
        on_output: Callable[[bytes], None] | None,
    ) -> Outcome:
        started = time.time()
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.attach(process)
        output = bytearray()

        assert process.stdout is not None
        pipe = process.stdout.fileno()

        def read() -> None:
            for chunk in iter(lambda: os.read(pipe, 65536), b""):
                output.extend(chunk)
                if len(output) > MAX_OUTPUT:
                    del output[: len(output) - MAX_OUTPUT]
                if on_output is not None:
                    on_output(chunk)

        reader = threading.Thread(target=read, name="emulator-sandbox-output", daemon=True)
        reader.start()
        timed_out = False
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            process.wait()
        reader.join(timeout=5)
        process.stdout.close()
        killed = handle.killed
        code = None if timed_out or killed else process.returncode
        return Outcome(code, bytes(output), timed_out, started, time.time(), killed=killed)

    def stop(self) -> None:
        """Kill every script still running (emulator stop/reset)."""
        with self._lock:
            running, self._running = self._running, set()
        for handle in running:
            handle.kill()


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
