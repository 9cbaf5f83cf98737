"""networking.k8s.io/v1 Ingress: validation as the API server's (``ValidateIngressSpec`` and
friends, first problem only) and server fields (generation, an empty load-balancer status: the
cluster runs no ingress controller, so nothing ever gets an address). Pure: never stores.
"""

from __future__ import annotations

import ipaddress
import re

from nsc_reconcile.emulator.kubernetes.errors import invalid
from nsc_reconcile.emulator.kubernetes.resources import Obj, ResourceType

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def prepare_ingress(rt: ResourceType, name: str, obj: Obj, old: Obj | None) -> None:
    """Validate ``obj`` (raises 422 Invalid) and fill generation and status in place."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    _check_spec(rt, name, spec)
    annotations = obj["metadata"].get("annotations") or {}
    if old is None and _CLASS_ANNOTATION in annotations and spec.get("ingressClassName"):
        raise invalid(
            rt,
            name,
            f"annotations.{_CLASS_ANNOTATION}",
            f'Invalid value: "{annotations[_CLASS_ANNOTATION]}": can not be set when the class '
            "field is also set",
        )
    metadata = obj["metadata"]
    if old is None:
        metadata["generation"] = 1
        obj["status"] = {"loadBalancer": {}}
    else:
        previous = int(old["metadata"].get("generation", 1))
        metadata["generation"] = previous + (spec != old.get("spec"))
        obj["status"] = old.get("status") or {"loadBalancer": {}}


def _check_spec(rt: ResourceType, name: str, spec: Obj) -> None:
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        raise invalid(
            rt,
            name,
            "spec",
            "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` "
            "must be specified",
        )
    if spec.get("defaultBackend") is not None:
        _check_backend(rt, name, spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        host = str((rule or {}).get("host") or "")
        where = f"spec.rules[{i}]"
        if host:
            _check_host(rt, name, host, f"{where}.host")
        http = (rule or {}).get("http")
        if http is None:
            continue
        paths = http.get("paths") or []
        if not paths:
            raise invalid(rt, name, f"{where}.http.paths", "Required value")
        for j, path in enumerate(paths):
            _check_path(rt, name, path or {}, f"{where}.http.paths[{j}]")
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate((tls or {}).get("hosts") or []):
            _check_host(rt, name, str(host), f"spec.tls[{i}].hosts[{j}]", ip_ok=True)
    class_name = spec.get("ingressClassName")
    if class_name is not None and not _SUBDOMAIN.match(str(class_name)):
        raise invalid(
            rt,
            name,
            "spec.ingressClassName",
            f'Invalid value: "{class_name}": a lowercase RFC 1123 subdomain must consist of '
            "lower case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character",
        )


def _check_host(rt: ResourceType, name: str, host: str, field: str, ip_ok: bool = False) -> None:
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip and not ip_ok:
        raise invalid(rt, name, field, f'Invalid value: "{host}": must be a DNS name, not an IP')
    bare = host[2:] if host.startswith("*.") else host
    if not _SUBDOMAIN.match(bare) or len(host) > 253:
        raise invalid(
            rt,
            name,
            field,
            f'Invalid value: "{host}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character",
        )


def _check_path(rt: ResourceType, name: str, path: Obj, where: str) -> None:
    path_type = path.get("pathType")
    if path_type is None:
        raise invalid(rt, name, f"{where}.pathType", "Required value: pathType must be specified")
    if path_type not in _PATH_TYPES:
        supported = ", ".join(f'"{t}"' for t in _PATH_TYPES)
        raise invalid(
            rt,
            name,
            f"{where}.pathType",
            f'Unsupported value: "{path_type}": supported values: {supported}',
        )
    value = str(path.get("path") or "")
    if (path_type != "ImplementationSpecific" or value) and not value.startswith("/"):
        raise invalid(
            rt, name, f"{where}.path", f'Invalid value: "{value}": must be an absolute path'
        )
    _check_backend(rt, name, path.get("backend") or {}, f"{where}.backend")


def _check_backend(rt: ResourceType, name: str, backend: Obj, where: str) -> None:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        raise invalid(
            rt, name, where, 'Invalid value: "": cannot set both resource and service backends'
        )
    if resource is not None:
        for key in ("kind", "name"):
            if not (resource or {}).get(key):
                raise invalid(
                    rt, name, f"{where}.resource.{key}", f"Required value: {key} is required"
                )
        return
    if service is None:
        raise invalid(rt, name, where, 'Invalid value: "": resource or service backend is required')
    service_name = str(service.get("name") or "")
    if not service_name:
        raise invalid(rt, name, f"{where}.service.name", "Required value")
    if not _LABEL_1035.match(service_name) or len(service_name) > 63:
        raise invalid(
            rt,
            name,
            f"{where}.service.name",
            f'Invalid value: "{service_name}": a DNS-1035 label must consist of lower case '
            "alphanumeric characters or '-', start with an alphabetic character, and end with "
            "an alphanumeric character",
        )
    port = service.get("port") or {}
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        raise invalid(rt, name, where, 'Invalid value: "": cannot set both port name & port number')
    if not port_name and not number:
        raise invalid(rt, name, where, "Required value: port name or number is required")
    if number and (not isinstance(number, int) or not 1 <= number <= 65535):
        raise invalid(
            rt,
            name,
            f"{where}.service.port.number",
            f"Invalid value: {number}: must be between 1 and 65535, inclusive",
        )
