"""Export the emulator's request log as oav traffic exchanges (one JSON file per request).

ARM URLs are rewritten to https://management.azure.com/..., Key Vault to
https://myvault.vault.azure.net/...; control calls, LRO status polls, Kubernetes and DNS are left
out (no REST spec covers them). Reads log entries only; writes only into ``out_dir``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ARM_HOST", "KEYVAULT_HOST", "export_exchanges", "to_exchange"]

ARM_HOST = "https://management.azure.com"
KEYVAULT_HOST = "https://myvault.vault.azure.net"
# The Logs Ingestion API has no specification in the pack: exported so that the validator
# lists its exchanges as without a specification, rather than leaving them out.
INGESTION_HOST = "https://mydcr-a1b2.koreacentral-1.ingest.monitor.azure.com"
_HOSTS = {"arm": ARM_HOST, "keyvault": KEYVAULT_HOST, "ingestion": INGESTION_HOST}
_OPERATION_STATUS = re.compile(r"/providers/[^/]+/locations/[^/]+/operation(s|results)/", re.I)
_LOOPBACK_URL = re.compile(r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?", re.I)


def _url(host: str, path: str, query: dict[str, str]) -> str:
    quoted = urllib.parse.quote(path, safe="/@:-._~!$&'()*+,;=")
    return f"{host}{quoted}" + (f"?{urllib.parse.urlencode(query)}" if query else "")


def _exportable(entry: dict[str, Any]) -> bool:
    if entry.get("plane") not in _HOSTS or entry.get("status") is None:
        return False
    path = str(entry.get("path", ""))
    if path.startswith("/_emulator/") or _OPERATION_STATUS.search(path):
        return False
    # The Key Vault challenge (a token-less request answered 401) is auth plumbing, not an API
    # operation of the spec.
    return not (entry.get("plane") == "keyvault" and entry.get("status") == 401)


def to_exchange(entry: dict[str, Any]) -> dict[str, Any] | None:
    """One log entry as ``{"liveRequest", "liveResponse"}``, or None when not exportable."""
    if not _exportable(entry):
        return None
    host = _HOSTS[str(entry["plane"])]
    path = str(entry["path"])
    if entry["plane"] == "keyvault" and len(path) > 1:
        # SecretClient asks for ".../secrets/NAME/" (empty version); the spec path has no slash.
        path = path.rstrip("/")
    request_headers: dict[str, str] = {}
    if entry.get("request_body") is not None:
        request_headers["content-type"] = "application/json"
    response_headers: dict[str, str] = {}
    for key, value in (entry.get("response_headers") or {}).items():
        if key in ("location", "azure-asyncoperation"):
            response_headers[key] = _LOOPBACK_URL.sub(host, str(value))
        elif key in ("content-type", "etag"):
            response_headers[key] = str(value)
    if entry.get("response_body") is not None and "content-type" not in response_headers:
        response_headers["content-type"] = "application/json; charset=utf-8"
    return {
        "liveRequest": {
            "url": _url(host, path, dict(entry.get("query") or {})),
            "method": str(entry["method"]),
            "headers": request_headers,
            "body": entry.get("request_body"),
        },
        "liveResponse": {
            "statusCode": str(entry["status"]),
            "headers": response_headers,
            "body": entry.get("response_body"),
        },
    }


def export_exchanges(
    log_entries: Iterable[dict[str, Any]], out_dir: str | Path, prefix: str = ""
) -> list[Path]:
    """Write one ``{prefix}NNNNN-METHOD-STATUS.json`` per exportable entry; returns the paths.

    Creates ``out_dir``; never deletes files already in it.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, entry in enumerate(log_entries):
        exchange = to_exchange(entry)
        if exchange is None:
            continue
        name = f"{prefix}{index:05d}-{entry['method']}-{entry['status']}.json"
        path = folder / name
        path.write_text(json.dumps(exchange, indent=1), encoding="utf-8")
        written.append(path)
    return written
