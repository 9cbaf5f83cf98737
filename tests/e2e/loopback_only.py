"""Run the CLI in a process that can reach loopback only (for authentication tests).

`python -m tests.e2e.loopback_only ARGS...` refuses, before any packet leaves, every name
lookup and connection that is not to 127.0.0.0/8, ::1 or localhost (the way a machine cut off
from Entra ID and IMDS behaves), then runs `nsc-reconcile ARGS...`.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _loopback(host: object) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if isinstance(address, tuple) and not _loopback(address[0]):
        raise OSError(f"loopback only: refused to connect to {address[0]}")
    _connect(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"loopback only: refused to resolve {host}")
    return _getaddrinfo(host, *args, **kwargs)


def install() -> None:
    """From now on, this process reaches loopback only."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _guarded_getaddrinfo


if __name__ == "__main__":
    install()
    from nsc_reconcile.cli import main

    main(sys.argv[1:])
