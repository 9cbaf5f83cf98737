"""PostgreSQL binaries and processes for the emulator's real servers (``pgserver.py``): find
Debian's server binaries, initialize a template data directory once per process, start and stop
server processes (run as ``postgres`` when we are root), clean up after a dead emulator, and
make SCRAM verifiers. Touches only the processes and directories it creates.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stringprep
import subprocess
import tempfile
import threading
import time
import unicodedata
from pathlib import Path

__all__ = [
    "ADMIN_GROUP",
    "BIN_ENV",
    "DIR_ENV",
    "SUPERUSER",
    "SUPERUSER_PASSWORD",
    "PostgresUnavailable",
    "find_bin_dir",
    "free_port",
    "installed_majors",
    "own",
    "reap_orphans",
    "remove_templates",
    "run_as",
    "scram_verifier",
    "spawn",
    "stop_process",
    "template_for",
    "version_of",
    "wait_ready",
    "work_root",
]

PG_ROOT = Path("/usr/lib/postgresql")
BIN_ENV = "NSC_PG_BIN"
DIR_ENV = "NSC_PG_DIR"  # where data directories go (default: /dev/shm when roomy, else /tmp)
SUPERUSER = "azure_superuser"  # Azure's own superuser name: reserved, never an admin login
ADMIN_GROUP = "azure_pg_admin"  # Azure: the admin is a member of it; ARM databases belong to it
PREFIX = "nsc-pg-"  # + the emulator's process id: whose directories they are
_START_SECONDS = 30.0
SUPERUSER_PASSWORD = secrets.token_urlsafe(32)  # this process only, never written anywhere


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or a server that would not start (the reason says)."""


# ---- binaries ---------------------------------------------------------------------------------
def installed_majors(root: Path = PG_ROOT) -> list[str]:
    """Major versions with server binaries under ``/usr/lib/postgresql``, newest first."""
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if p.name.isdigit() and (p / "bin/postgres").exists()]
    return sorted(found, key=int, reverse=True)


def find_bin_dir(version: str | None = None) -> Path:
    """The bin directory to run: ``$NSC_PG_BIN``, else the declared major's, else the newest
    installed. Raises PostgresUnavailable when there is none."""
    override = os.environ.get(BIN_ENV)
    if override:
        path = Path(override)
        if not (path / "postgres").exists() or not (path / "initdb").exists():
            raise PostgresUnavailable(f"{BIN_ENV}={override} holds no postgres and initdb")
        return path
    majors = installed_majors()
    if not majors:
        raise PostgresUnavailable(
            f"no PostgreSQL server binaries in {PG_ROOT}/<major>/bin: run scripts/setup "
            f"(installs Debian's postgresql package) or set {BIN_ENV}"
        )
    major = version if version in majors else majors[0]
    return PG_ROOT / major / "bin"


# ---- passwords --------------------------------------------------------------------------------
def _saslprep(password: str) -> bytes:
    """The bytes PostgreSQL hashes (RFC 4013 SASLprep; the raw string when it is not valid
    SASLprep input, as PostgreSQL's ``pg_saslprep`` falls back)."""
    raw = password.encode()
    if password.isascii():  # SASLprep maps and prohibits nothing printable in ASCII
        return raw
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    text = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_a1,
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    if not text or any(check(c) for c in text for check in prohibited):
        return raw
    if any(stringprep.in_table_d1(c) for c in text) and (
        any(stringprep.in_table_d2(c) for c in text)
        or not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1]))
    ):
        return raw
    return text.encode()


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), made
    here so the password itself is never sent in SQL nor kept."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# ---- processes and directories ----------------------------------------------------------------
def run_as() -> pwd.struct_passwd | None:
    """The account servers run as: ``postgres`` when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no 'postgres' user to run PostgreSQL as"
        ) from None


def own(path: Path, user: pwd.struct_passwd | None, mode: int = 0o700) -> None:
    path.chmod(mode)
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
    return env


def _run(args: list[str], user: pwd.struct_passwd | None, stdin: str | None = None) -> None:
    done = subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env(),
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
        cwd="/",
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PostgresUnavailable(f"{Path(args[0]).name} failed: {' | '.join(tail)}")


def work_root() -> Path:
    """Where servers' directories go: ``$NSC_PG_DIR``; else ``/dev/shm`` (tmpfs: a server's
    copy takes ~0.1 s there against ~1 s on a busy disk) when it has 2 GiB free, which small
    container defaults (64 MB) do not; else the temporary directory."""
    override = os.environ.get(DIR_ENV)
    if override:
        return Path(override)
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        stats = os.statvfs(shm)
        if stats.f_bavail * stats.f_frsize >= 2 << 30 and os.access(shm, os.W_OK):
            return shm
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> None:
    """Stop servers and remove directories left by emulator processes that died without
    cleaning up (SIGKILL): their directory names carry the dead process's id."""
    roots = {work_root(), Path(tempfile.gettempdir()), Path("/dev/shm")}
    folders = [f for root in roots if root.is_dir() for f in root.glob(f"{PREFIX}*")]
    for folder in folders:
        match = re.match(rf"{PREFIX}(\d+)-", folder.name)
        if not match or _alive(int(match.group(1))):
            continue
        for pid_file in folder.glob("**/postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pid_file.read_text().splitlines()[0])
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if str(pid_file.parent).encode() in cmdline:  # that server, not a reused pid
                    os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(folder, ignore_errors=True)


_TEMPLATES: dict[Path, Path] = {}  # bin dir -> initialized data directory (this process)
_TEMPLATE_LOCK = threading.Lock()
_REAPED = False


def template_for(bin_dir: Path) -> Path:
    """A data directory initialized once per process for ``bin_dir`` (initdb, the Azure
    roles and system databases); servers copy it. Removed at exit."""
    global _REAPED
    with _TEMPLATE_LOCK:
        if not _REAPED:
            reap_orphans()
            _REAPED = True
        found = _TEMPLATES.get(bin_dir)
        if found is not None and found.is_dir():
            return found
        user = run_as()
        prefix = f"{PREFIX}{os.getpid()}-template-"
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=work_root()))
        own(folder, user)
        data = folder / "data"
        password_file = folder / "superuser"
        password_file.write_text(SUPERUSER_PASSWORD)
        own(password_file, user, 0o600)
        args = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                "--no-sync", "--no-instructions", "--wal-segsize=1"]  # fmt: skip
        try:
            try:
                _run([*args, "--locale=C.UTF-8"], user)
            except PostgresUnavailable:  # no C.UTF-8 locale on this system
                shutil.rmtree(data, ignore_errors=True)
                _run([*args, "--no-locale"], user)
            # Azure's own role and databases, made in single-user mode (no server to start).
            setup = (
                f"CREATE ROLE {ADMIN_GROUP} NOLOGIN;\n"
                "CREATE DATABASE azure_maintenance;\n"
                "REVOKE CONNECT ON DATABASE azure_maintenance FROM PUBLIC;\n"
                "CREATE DATABASE azure_sys;\n"
            )
            single = [str(bin_dir / "postgres"), "--single", "-D", str(data), "-c", "fsync=off"]
            _run([*single, "postgres"], user, stdin=setup)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            password_file.unlink(missing_ok=True)
        _TEMPLATES[bin_dir] = data
        return data


def remove_templates() -> None:
    with _TEMPLATE_LOCK:
        for data in _TEMPLATES.values():
            shutil.rmtree(data.parent, ignore_errors=True)
        _TEMPLATES.clear()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(
    bin_dir: Path, data: Path, log_path: Path, user: pwd.struct_passwd | None
) -> subprocess.Popen[bytes]:
    """Start ``postgres -D data`` (as ``user``), its output to ``log_path``; not waited for."""
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env(),
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            cwd=str(data),
        )


def wait_ready(process: subprocess.Popen[bytes], data: Path) -> bool:
    """Wait until the postmaster says "ready" in postmaster.pid (as ``pg_ctl -w`` does)."""
    deadline = time.monotonic() + _START_SECONDS
    pid_file = data / "postmaster.pid"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            mine = len(lines) >= 8 and lines[0].strip() == str(process.pid)
            if mine and lines[7].strip() == "ready":
                return True
        time.sleep(0.01)
    return False


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Immediate shutdown (SIGQUIT, what ``pg_ctl stop -m immediate`` sends), then reap."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


_VERSIONS: dict[Path, str] = {}


def version_of(bin_dir: Path) -> str:
    if bin_dir not in _VERSIONS:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        found = re.search(r"(\d+(?:\.\d+)?)", out)
        _VERSIONS[bin_dir] = found.group(1) if found else out.strip()
    return _VERSIONS[bin_dir]
