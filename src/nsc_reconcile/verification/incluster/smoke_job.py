"""nsc-reconcile connectivity smoke, run INSIDE the network (``verify --smoke --from aks`` runs it
as a Kubernetes Job, ``--from databricks`` as a one-time Databricks run). Standard library only,
Python >= 3.9: ``python smoke_job.py`` in any python image. Configured by environment variables
(below); prints one JSON object per check on stdout and never a secret value:
``{"check", "target", "status": "PASS|FAIL|SKIP", "evidence", "detail", "ms"}``.
Exit code 0 when nothing failed, 1 when a check failed, 2 when the configuration is unusable.

Checks and their variables (a check whose variables are missing is SKIP, naming them):
- dns: ``NSC_SMOKE_DNS_NAMES`` (comma separated) each resolve; ``NSC_SMOKE_DNS_EXPECT`` (JSON
  name -> IP) the address each must resolve to; else any private address passes.
- postgres: ``NSC_SMOKE_PG_HOST``, ``NSC_SMOKE_PG_PORT`` (5432), ``NSC_SMOKE_PG_USER``,
  ``NSC_SMOKE_PG_DATABASE``, ``NSC_SMOKE_PG_PASSWORD``: TLS (SSLRequest, certificate verified
  against the host name), SCRAM-SHA-256 login, ``SELECT 1`` (simple query protocol).
- openai: ``NSC_SMOKE_OPENAI_ENDPOINT``, ``NSC_SMOKE_OPENAI_DEPLOYMENT``,
  ``NSC_SMOKE_OPENAI_API_VERSION``, ``NSC_SMOKE_OPENAI_KEY``: one short chat completion.
- langfuse: ``NSC_SMOKE_LANGFUSE_URL``, ``NSC_SMOKE_LANGFUSE_PUBLIC_KEY``,
  ``NSC_SMOKE_LANGFUSE_SECRET_KEY``: health, one trace written and read back by id.
Common: ``NSC_SMOKE_CHECKS`` (default: all four), ``NSC_SMOKE_ORIGIN`` (label),
``NSC_SMOKE_TIMEOUT`` (seconds per network operation, default 10), ``NSC_SMOKE_TRACE_WAIT``
(seconds to wait for a trace to become readable, default 30), ``SSL_CERT_FILE`` (CA bundle;
default: the system's).
Network: ``NSC_SMOKE_DNS=IP:PORT`` asks that DNS server directly (a minimal DNS client over UDP,
CNAMEs followed); otherwise the system resolver. ``NSC_SMOKE_ROUTES`` (emulator only, JSON
``{"10.10.1.5:5432": "127.0.0.1:40001"}``) says where to connect for an address, curl
``--resolve`` style; when it is set, an address without a route is never dialled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import random
import secrets
import socket
import ssl
import struct
import sys
import time
import unicodedata
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

CHECKS = ("dns", "postgres", "openai", "langfuse")
SECRET_VARIABLES = (
    "NSC_SMOKE_PG_PASSWORD",
    "NSC_SMOKE_OPENAI_KEY",
    "NSC_SMOKE_LANGFUSE_SECRET_KEY",
)
QTYPE_A = 1
QTYPE_CNAME = 5
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_CNAME_HOPS = 8
SSL_REQUEST_CODE = 80877103
PROTOCOL_3_0 = 196608


class SmokeError(Exception):
    """A check failed for a reason worth one line of evidence (never holds a secret)."""


class NoRouteError(SmokeError):
    """The emulator gave no route to that address: nothing answers there."""


# --------------------------------------------------------------------------- DNS client
def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise SmokeError(f"not a valid DNS name: {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def build_query(name: str, qtype: int = QTYPE_A, query_id: int | None = None) -> bytes:
    """One DNS query (RD set) for ``name``."""
    ident = random.getrandbits(16) if query_id is None else query_id
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", qtype, 1)


def read_name(message: bytes, offset: int) -> tuple[str, int]:
    """The (possibly compressed) name at ``offset``; returns it and the offset after it."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(message):
            raise SmokeError("truncated DNS answer")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise SmokeError("truncated DNS answer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            jumps += 1
            if jumps > 64:
                raise SmokeError("DNS name compression loop")
            continue
        if length == 0:
            offset += 1
            break
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels).lower(), (end if end >= 0 else offset)


def parse_response(message: bytes, query_id: int) -> tuple[int, bool, list[tuple[str, int, str]]]:
    """(rcode, truncated, answers as (owner, type, data)) of one DNS response."""
    if len(message) < 12:
        raise SmokeError("truncated DNS answer")
    ident, flags, qdcount, ancount, _ns, _ar = struct.unpack("!HHHHHH", message[:12])
    if ident != query_id:
        raise SmokeError("DNS answer for another query")
    offset = 12
    for _ in range(qdcount):
        _name, offset = read_name(message, offset)
        offset += 4
    answers: list[tuple[str, int, str]] = []
    for _ in range(ancount):
        owner, offset = read_name(message, offset)
        if offset + 10 > len(message):
            raise SmokeError("truncated DNS answer")
        rtype, _class, _ttl, length = struct.unpack("!HHIH", message[offset : offset + 10])
        offset += 10
        data = message[offset : offset + length]
        if rtype == QTYPE_A and length == 4:
            answers.append((owner, rtype, socket.inet_ntoa(data)))
        elif rtype == QTYPE_CNAME:
            answers.append((owner, rtype, read_name(message, offset)[0]))
        offset += length
    return flags & 0x000F, bool(flags & 0x0200), answers


def dns_exchange(name: str, server: tuple[str, int], timeout: float) -> tuple[int, list[Any]]:
    """Ask ``server`` (and only it) for ``name`` A over UDP; over TCP when truncated."""
    query_id = random.getrandbits(16)
    query = build_query(name, QTYPE_A, query_id)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.sendto(query, server)
        deadline = time.monotonic() + timeout
        while True:
            udp.settimeout(max(0.05, deadline - time.monotonic()))
            message, sender = udp.recvfrom(65535)
            if sender[:2] == server and message[:2] == query[:2]:
                break
    rcode, truncated, answers = parse_response(message, query_id)
    if truncated:
        with socket.create_connection(server, timeout=timeout) as tcp:
            tcp.sendall(struct.pack("!H", len(query)) + query)
            size = struct.unpack("!H", recv_exact(tcp, 2))[0]
            rcode, _, answers = parse_response(recv_exact(tcp, size), query_id)
    return rcode, answers


class Resolution:
    """What DNS said of one name: rcode, the CNAME chain and the addresses."""

    def __init__(self, name: str, rcode: str, chain: list[str], addresses: list[str]) -> None:
        self.name, self.rcode, self.chain, self.addresses = name, rcode, chain, addresses

    def describe(self) -> str:
        steps = [self.name, *("CNAME " + c for c in self.chain)]
        steps.append("A " + ", ".join(self.addresses) if self.addresses else self.rcode)
        return " -> ".join(steps)


def resolve_with(name: str, server: tuple[str, int], timeout: float) -> Resolution:
    """A records of ``name`` from ``server``, following CNAMEs (asking again for a target the
    answer did not resolve)."""
    current = name.lower().rstrip(".")
    chain: list[str] = []
    for _ in range(MAX_CNAME_HOPS):
        rcode, answers = dns_exchange(current, server, timeout)
        if rcode != 0:
            return Resolution(name, RCODES.get(rcode, f"RCODE{rcode}"), chain, [])
        cnames = {owner: data for owner, rtype, data in answers if rtype == QTYPE_CNAME}
        addresses: dict[str, list[str]] = {}
        for owner, rtype, data in answers:
            if rtype == QTYPE_A:
                addresses.setdefault(owner, []).append(data)
        hops = 0
        while current in cnames and hops < MAX_CNAME_HOPS:
            current = cnames[current]
            chain.append(current)
            hops += 1
        if current in addresses:
            return Resolution(name, "NOERROR", chain, addresses[current])
        if not hops:
            return Resolution(name, "NOERROR", chain, [])
    return Resolution(name, "SERVFAIL (CNAME chain too long)", chain, [])


# --------------------------------------------------------------------------- network
def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host:
        return text.strip(), default_port
    return host.strip("[]"), int(port)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Network:
    """Name resolution and connections as this pod sees the network (see module docstring)."""

    def __init__(
        self,
        dns_server: tuple[str, int] | None,
        routes: dict[str, str] | None,
        timeout: float,
        cafile: str | None,
    ) -> None:
        self.dns_server = dns_server
        self.routes = routes
        self.timeout = timeout
        self.cafile = cafile

    @classmethod
    def from_env(cls, env: Mapping[str, str], timeout: float) -> Network:
        dns = env.get("NSC_SMOKE_DNS", "").strip()
        routes_text = env.get("NSC_SMOKE_ROUTES", "").strip()
        routes = None
        if routes_text:
            loaded = json.loads(routes_text)
            if not isinstance(loaded, dict):
                raise ValueError("NSC_SMOKE_ROUTES must be a JSON object")
            routes = {str(k): str(v) for k, v in loaded.items()}
        return cls(
            parse_host_port(dns, 53) if dns else None,
            routes,
            timeout,
            env.get("SSL_CERT_FILE") or None,
        )

    def where(self) -> str:
        if self.dns_server is not None:
            return f"DNS server {self.dns_server[0]}:{self.dns_server[1]}"
        return "system resolver"

    def resolve(self, name: str) -> Resolution:
        if is_ip(name):
            return Resolution(name, "NOERROR", [], [name])
        if self.dns_server is not None:
            return resolve_with(name, self.dns_server, self.timeout)
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as error:
            return Resolution(name, f"NXDOMAIN ({error.strerror})", [], [])
        return Resolution(name, "NOERROR", [], list(dict.fromkeys(str(i[4][0]) for i in infos)))

    def dial(self, address: str, port: int) -> tuple[str, int]:
        """Where to connect for ``address:port``: itself, or its route (emulator)."""
        if self.routes is None:
            return address, port
        to = self.routes.get(f"{address}:{port}")
        if to is None:
            raise NoRouteError(f"nothing answers at {address}:{port} (no route)")
        host, real_port = parse_host_port(to, port)
        if not ipaddress.ip_address(host).is_loopback:
            raise NoRouteError(f"route for {address}:{port} leaves loopback ({to}): refused")
        return host, real_port

    def connect(self, host: str, port: int) -> tuple[socket.socket, str]:
        """A TCP connection to ``host:port`` (resolved here); returns it and a description."""
        found = self.resolve(host)
        if not found.addresses:
            raise SmokeError(f"{host} does not resolve ({found.rcode})")
        address = found.addresses[0]
        to = self.dial(address, port)
        sock = socket.create_connection(to, timeout=self.timeout)
        via = "" if to == (address, port) else f" via route {to[0]}:{to[1]}"
        return sock, f"{address}:{port}{via}"

    def tls_context(self) -> ssl.SSLContext:
        context = (
            ssl.create_default_context(cafile=self.cafile)
            if self.cafile
            else (ssl.create_default_context())
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def recv_exact(sock: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise SmokeError("connection closed by the server")
        data += chunk
    return data


# --------------------------------------------------------------------------- SCRAM-SHA-256
def saslprep(password: str) -> bytes:
    """The password as SCRAM hashes it: ASCII as is, else NFKC (a SASLprep approximation;
    PostgreSQL itself falls back to the raw bytes when a password is not valid SASLprep)."""
    if password.isascii():
        return password.encode()
    return unicodedata.normalize("NFKC", password).encode()


def scram_client_first(user: str, nonce: str) -> tuple[str, str]:
    """(client-first-message, its bare part); no channel binding (gs2 header ``n,,``)."""
    name = user.replace("=", "=3D").replace(",", "=2C")
    bare = f"n={name},r={nonce}"
    return "n,," + bare, bare


def scram_client_final(
    password: str, client_first_bare: str, server_first: str, nonce: str
) -> tuple[str, bytes]:
    """(client-final-message, the server signature to expect) for ``server_first``."""
    fields = dict(item.split("=", 1) for item in server_first.split(",") if "=" in item)
    server_nonce, salt, iterations = fields.get("r", ""), fields.get("s", ""), fields.get("i", "")
    if not server_nonce.startswith(nonce) or not salt or not iterations.isdigit():
        raise SmokeError("malformed SCRAM server-first-message")
    salted = hashlib.pbkdf2_hmac(
        "sha256", saslprep(password), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c={base64.b64encode(b'n,,').decode()},r={server_nonce}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    mixed = int.from_bytes(client_key, "big") ^ int.from_bytes(signature, "big")
    proof = mixed.to_bytes(len(client_key), "big")
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return f"{without_proof},p={base64.b64encode(proof).decode()}", server_signature


def scram_server_final_ok(server_final: str, expected: bytes) -> bool:
    fields = dict(item.split("=", 1) for item in server_final.split(",") if "=" in item)
    if "e" in fields:
        raise SmokeError(f"SCRAM error from the server: {fields['e']}")
    return hmac.compare_digest(base64.b64decode(fields.get("v", "")), expected)


# --------------------------------------------------------------------------- PostgreSQL
class PgConnection:
    """Just enough of the PostgreSQL v3 protocol: messages in and out, errors as text."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.parameters: dict[str, str] = {}

    def send(self, kind: bytes, payload: bytes) -> None:
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def receive(self) -> tuple[bytes, bytes]:
        head = recv_exact(self.sock, 5)
        size = struct.unpack("!i", head[1:])[0]
        if size < 4 or size > 1 << 24:
            raise SmokeError("malformed PostgreSQL message")
        payload = recv_exact(self.sock, size - 4)
        if head[:1] == b"E":
            raise SmokeError("PostgreSQL error: " + pg_error_text(payload))
        if head[:1] == b"S":
            name, _, rest = payload.partition(b"\x00")
            self.parameters[name.decode()] = rest.rstrip(b"\x00").decode("utf-8", "replace")
        return head[:1], payload

    def expect(self, kinds: bytes) -> tuple[bytes, bytes]:
        """The next message whose type is one of ``kinds``, skipping notices, parameters and
        the backend key."""
        while True:
            kind, payload = self.receive()
            if kind in kinds:
                return kind, payload
            if kind in (b"N", b"S", b"K"):  # notices, parameters, the cancel key
                continue
            raise SmokeError(f"unexpected PostgreSQL message {kind!r}")


def pg_error_text(payload: bytes) -> str:
    fields: dict[str, str] = {}
    for part in payload.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return f"{fields.get('S', 'ERROR')} {fields.get('C', '')}: {fields.get('M', '')}".strip()


def pg_authenticate(pg: PgConnection, user: str, password: str) -> str:
    """Answer the server's authentication request; returns the method used."""
    method = "trust (no password asked)"
    while True:
        _, payload = pg.expect(b"R")
        code = struct.unpack("!i", payload[:4])[0]
        if code == 0:
            return method
        if code == 10:  # AuthenticationSASL: mechanism names
            mechanisms = [m.decode() for m in payload[4:].split(b"\x00") if m]
            if "SCRAM-SHA-256" not in mechanisms:
                raise SmokeError(f"server offers no SCRAM-SHA-256 ({', '.join(mechanisms)})")
            nonce = base64.b64encode(secrets.token_bytes(18)).decode()
            first, bare = scram_client_first("", nonce)
            body = first.encode()
            pg.send(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(body)) + body)
            _, cont = pg.expect(b"R")
            if struct.unpack("!i", cont[:4])[0] != 11:
                raise SmokeError("unexpected SASL step from the server")
            final, expected = scram_client_final(password, bare, cont[4:].decode(), nonce)
            pg.send(b"p", final.encode())
            _, done = pg.expect(b"R")
            if struct.unpack("!i", done[:4])[0] != 12:
                raise SmokeError("unexpected SASL step from the server")
            if not scram_server_final_ok(done[4:].decode(), expected):
                raise SmokeError("the server's SCRAM signature is wrong (not the real server?)")
            method = "SCRAM-SHA-256"
        elif code == 5:  # AuthenticationMD5Password
            inner = hashlib.md5((password + user).encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + payload[4:8]).hexdigest()
            pg.send(b"p", b"md5" + outer.encode() + b"\x00")
            method = "md5 (the server did not ask for SCRAM)"
        elif code == 3:  # AuthenticationCleartextPassword (inside TLS)
            pg.send(b"p", password.encode() + b"\x00")
            method = "cleartext password inside TLS (the server did not ask for SCRAM)"
        else:
            raise SmokeError(f"unsupported PostgreSQL authentication request {code}")


def pg_simple_query(pg: PgConnection, sql: str) -> list[list[str | None]]:
    pg.send(b"Q", sql.encode() + b"\x00")
    rows: list[list[str | None]] = []
    while True:
        kind, payload = pg.expect(b"TDCIZ")
        if kind == b"D":
            count = struct.unpack("!h", payload[:2])[0]
            offset = 2
            row: list[str | None] = []
            for _ in range(count):
                size = struct.unpack("!i", payload[offset : offset + 4])[0]
                offset += 4
                if size < 0:
                    row.append(None)
                else:
                    row.append(payload[offset : offset + size].decode("utf-8", "replace"))
                    offset += size
            rows.append(row)
        elif kind == b"Z":
            return rows


def check_postgres(env: Mapping[str, str], net: Network) -> tuple[str, str]:
    host = env["NSC_SMOKE_PG_HOST"]
    port = int(env.get("NSC_SMOKE_PG_PORT") or 5432)
    user, database = env["NSC_SMOKE_PG_USER"], env["NSC_SMOKE_PG_DATABASE"]
    sock, where = net.connect(host, port)
    with sock:
        sock.sendall(struct.pack("!ii", 8, SSL_REQUEST_CODE))
        answer = recv_exact(sock, 1)
        if answer != b"S":
            raise SmokeError(f"{host} refused TLS (SSLRequest answered {answer!r})")
        with net.tls_context().wrap_socket(sock, server_hostname=host) as tls:
            tls_text = f"{tls.version()} certificate verified for {host}"
            pg = PgConnection(tls)
            startup = b""
            for key, value in (
                ("user", user),
                ("database", database),
                ("application_name", "nsc-reconcile-smoke"),
            ):
                startup += key.encode() + b"\x00" + value.encode() + b"\x00"
            body = struct.pack("!i", PROTOCOL_3_0) + startup + b"\x00"
            tls.sendall(struct.pack("!i", len(body) + 4) + body)
            method = pg_authenticate(pg, user, env["NSC_SMOKE_PG_PASSWORD"])
            pg.expect(b"Z")
            rows = pg_simple_query(pg, "SELECT 1")
            pg.send(b"X", b"")
    if rows != [["1"]]:
        raise SmokeError(f"SELECT 1 returned {rows!r}")
    version = pg.parameters.get("server_version", "?")
    return (
        f"{host} = {where}; {tls_text}; {method} login as {user} to database {database}; "
        f"SELECT 1 returned 1; server_version {version}",
        "" if method == "SCRAM-SHA-256" else f"logged in with {method}",
    )


# --------------------------------------------------------------------------- HTTP
def http_request(
    net: Network,
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, bytes, str]:
    """One HTTP(S) request through ``net`` (TLS verified against the URL's host name);
    returns (status, body, where it connected)."""
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    sock, where = net.connect(host, port)
    conn: http.client.HTTPConnection
    if secure:
        sock = net.tls_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPSConnection(host, port, timeout=net.timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=net.timeout)
    conn.sock = sock
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), where
    finally:
        conn.close()


def error_of(body: bytes) -> str:
    """A short reason from an error body (``error.message``, ``message``), never the body."""
    try:
        loaded = json.loads(body)
    except ValueError:
        return ""
    if isinstance(loaded, dict):
        inner = loaded.get("error")
        if isinstance(inner, dict):
            return str(inner.get("code") or "") + ": " + str(inner.get("message") or "")[:200]
        if loaded.get("message"):
            return str(loaded["message"])[:200]
    return ""


# --------------------------------------------------------------------------- OpenAI
def check_openai(env: Mapping[str, str], net: Network) -> tuple[str, str]:
    endpoint = env["NSC_SMOKE_OPENAI_ENDPOINT"].rstrip("/")
    deployment = env["NSC_SMOKE_OPENAI_DEPLOYMENT"]
    version = env.get("NSC_SMOKE_OPENAI_API_VERSION") or "2024-10-21"
    path = f"/openai/deployments/{urllib.parse.quote(deployment)}/chat/completions"
    url = f"{endpoint}{path}?api-version={urllib.parse.quote(version)}"
    body = {
        "messages": [{"role": "user", "content": "Connectivity check: reply with the word ok."}],
        "max_tokens": 5,
        "temperature": 0,
    }
    headers = {"api-key": env["NSC_SMOKE_OPENAI_KEY"], "Content-Type": "application/json"}
    status, data, where = http_request(net, url, "POST", headers, json.dumps(body).encode())
    host = urllib.parse.urlsplit(endpoint).hostname
    if status != 200:
        raise SmokeError(f"HTTP {status} from {host} ({where}) {error_of(data)}".rstrip())
    answer = json.loads(data)
    choice = (answer.get("choices") or [{}])[0]
    usage = answer.get("usage") or {}
    return (
        f"{host} = {where}; TLS verified; POST chat/completions on deployment {deployment} "
        f"(api-version {version}): HTTP 200, model {answer.get('model', '?')}, "
        f"finish_reason {choice.get('finish_reason', '?')}, "
        f"{usage.get('total_tokens', '?')} tokens",
        "",
    )


# --------------------------------------------------------------------------- LangFuse
def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"


def check_langfuse(env: Mapping[str, str], net: Network) -> tuple[str, str]:
    base = env["NSC_SMOKE_LANGFUSE_URL"].rstrip("/")
    status, data, where = http_request(net, f"{base}/api/public/health", "GET", {})
    if status != 200:
        raise SmokeError(f"health: HTTP {status} from {base} ({where})")
    health = json.loads(data)
    pair = f"{env['NSC_SMOKE_LANGFUSE_PUBLIC_KEY']}:{env['NSC_SMOKE_LANGFUSE_SECRET_KEY']}"
    headers = {
        "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
        "Content-Type": "application/json",
    }
    trace_id = str(uuid.uuid4())
    origin = env.get("NSC_SMOKE_ORIGIN") or "network"
    stamp = now_iso()
    event = {
        "id": str(uuid.uuid4()),
        "type": "trace-create",
        "timestamp": stamp,
        "body": {
            "id": trace_id,
            "timestamp": stamp,
            "name": f"nsc-reconcile-smoke-from-{origin}",
            "tags": ["nsc-reconcile-smoke"],
            "metadata": {"origin": origin},
        },
    }
    url = f"{base}/api/public/ingestion"
    payload = json.dumps({"batch": [event]}).encode()
    written, data, _ = http_request(net, url, "POST", headers, payload)
    if written not in (200, 207):
        raise SmokeError(f"ingestion: HTTP {written} {error_of(data)}".rstrip())
    result = json.loads(data)
    if result.get("errors") or not result.get("successes"):
        raise SmokeError(f"ingestion rejected the trace: {json.dumps(result.get('errors'))[:200]}")
    started = time.monotonic()
    wait = float(env.get("NSC_SMOKE_TRACE_WAIT") or 30)
    read_url = f"{base}/api/public/traces/{trace_id}"
    delay = 0.2
    while True:
        status, data, _ = http_request(net, read_url, "GET", headers)
        if status == 200:
            break
        if status != 404 or time.monotonic() - started > wait:
            raise SmokeError(f"trace {trace_id} not readable: HTTP {status} {error_of(data)}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    trace = json.loads(data)
    if trace.get("id") != trace_id:
        raise SmokeError(f"GET traces/{trace_id} answered another trace ({trace.get('id')})")
    waited = int((time.monotonic() - started) * 1000)
    return (
        f"{base} = {where}; health {health.get('status', '?')} (version "
        f"{health.get('version', '?')}); trace {trace_id} written (HTTP {written})"
        f" and read back by id after {waited} ms (name {trace.get('name')})",
        "",
    )


# --------------------------------------------------------------------------- DNS check
def check_dns_name(name: str, expect: str | None, net: Network) -> tuple[str, str]:
    found = net.resolve(name)
    evidence = f"{found.describe()} ({net.where()})"
    if not found.addresses:
        raise SmokeError(f"{evidence}: does not resolve")
    if expect is not None and found.addresses != [expect]:
        raise SmokeError(f"{evidence}: expected {expect}")
    public = [a for a in found.addresses if not ipaddress.ip_address(a).is_private]
    if public:
        raise SmokeError(f"{evidence}: public address {', '.join(public)} (not the private path)")
    return evidence, ""


# --------------------------------------------------------------------------- running
NEEDS = {
    "dns": ("NSC_SMOKE_DNS_NAMES",),
    "postgres": (
        "NSC_SMOKE_PG_HOST",
        "NSC_SMOKE_PG_USER",
        "NSC_SMOKE_PG_DATABASE",
        "NSC_SMOKE_PG_PASSWORD",
    ),
    "openai": ("NSC_SMOKE_OPENAI_ENDPOINT", "NSC_SMOKE_OPENAI_DEPLOYMENT", "NSC_SMOKE_OPENAI_KEY"),
    "langfuse": (
        "NSC_SMOKE_LANGFUSE_URL",
        "NSC_SMOKE_LANGFUSE_PUBLIC_KEY",
        "NSC_SMOKE_LANGFUSE_SECRET_KEY",
    ),
}
TARGETS = {
    "postgres": "NSC_SMOKE_PG_HOST",
    "openai": "NSC_SMOKE_OPENAI_ENDPOINT",
    "langfuse": "NSC_SMOKE_LANGFUSE_URL",
}


def dns_step(name: str, expect: str | None, net: Network) -> Callable[[], tuple[str, str]]:
    return lambda: check_dns_name(name, expect, net)


class Reporter:
    """Writes one JSON line per check with every secret value of the environment masked."""

    def __init__(self, env: Mapping[str, str], out: Any) -> None:
        values = [env.get(name, "") for name in SECRET_VARIABLES]
        self.secrets = sorted((v for v in values if len(v) >= 4), key=len, reverse=True)
        self.out = out
        self.failed = False

    def mask(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "***")
        return text

    def emit(
        self, check: str, target: str, status: str, evidence: str, detail: str, ms: int
    ) -> None:
        self.failed = self.failed or status == "FAIL"
        line = {
            "check": check,
            "target": target,
            "status": status,
            "evidence": self.mask(evidence),
            "detail": self.mask(detail),
            "ms": ms,
        }
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()

    def run(self, check: str, target: str, step: Callable[[], tuple[str, str]]) -> None:
        started = time.monotonic()
        try:
            evidence, detail = step()
            status = "PASS"
        except Exception as error:  # every failure is a FAIL line, never a crash
            status, evidence = "FAIL", ""
            detail = (
                str(error)
                if isinstance(error, SmokeError)
                else (f"{type(error).__name__}: {error}")
            )
        self.emit(check, target, status, evidence, detail, int((time.monotonic() - started) * 1000))


def main(environ: Mapping[str, str] | None = None, out: Any = None) -> int:
    env = dict(os.environ if environ is None else environ)
    reporter = Reporter(env, out or sys.stdout)
    asked = [c.strip() for c in (env.get("NSC_SMOKE_CHECKS") or ",".join(CHECKS)).split(",")]
    unknown = [c for c in asked if c and c not in CHECKS]
    try:
        timeout = float(env.get("NSC_SMOKE_TIMEOUT") or 10)
        net = Network.from_env(env, timeout)
        expect = json.loads(env.get("NSC_SMOKE_DNS_EXPECT") or "{}")
    except ValueError as error:
        reporter.emit("config", "", "FAIL", "", f"unusable configuration: {error}", 0)
        return 2
    if unknown:
        reporter.emit("config", "", "FAIL", "", f"unknown checks: {', '.join(unknown)}", 0)
        return 2
    for check in (c for c in CHECKS if c in asked):
        missing = [name for name in NEEDS[check] if not env.get(name)]
        target = env.get(TARGETS.get(check, ""), "")
        if missing:
            reporter.emit(check, target, "SKIP", "", "not configured: " + ", ".join(missing), 0)
            continue
        if check == "dns":
            for name in filter(None, (n.strip() for n in env["NSC_SMOKE_DNS_NAMES"].split(","))):
                reporter.run("dns", name, dns_step(name, expect.get(name), net))
        elif check == "postgres":
            reporter.run(check, target, lambda: check_postgres(env, net))
        elif check == "openai":
            reporter.run(check, target, lambda: check_openai(env, net))
        else:
            reporter.run(check, target, lambda: check_langfuse(env, net))
    return 1 if reporter.failed else 0


if __name__ == "__main__":
    sys.exit(main())
