"""Data-driven reconciler cases: desired + live -> expected plan action and field changes.

Each file under cases/<kind>/ holds a resource as declared in YAML, the live resource as
Azure's GET returns it (full of server-populated fields, or null when absent), the outputs
and live state of other resources it needs, Azure's answer to a lookup the kind makes
(`role_definitions`: the role definition list a role assignment resolves its role with), and
the expected action and changes. The reconciler's own desired/normalize logic and the
engine's diff run unchanged; only the GET and that lookup are replaced by the recorded answers
(no SDK is called or patched).

A kind that reads a data plane over plain HTTPS (container images: the registry's token
exchange and manifest HEAD) records the HTTP answers instead (`http`: `METHOD path` ->
status, headers, JSON body): its real `read` runs through azure-core and requests, and only
the socket is replaced (a requests transport adapter answers from the recording; a request
not recorded fails the case). Nothing connects anywhere.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from ruamel.yaml import YAML

from nsc_reconcile import kinds, load_desired_state
from nsc_reconcile.changes import Action, Unknown
from nsc_reconcile.model.base import ChildResource, Resource
from nsc_reconcile.resources import reconciler_for
from nsc_reconcile.resources.base import Context, Live, flatten, is_managed
from tests.paths import DESIRED_STATE

CASES = Path(__file__).parent / "cases"
SEED = load_desired_state(DESIRED_STATE)
SUBSCRIPTION = "00000000-0000-0000-0000-00000000a1b2"


class _Credential:
    """An ARM token for the registry's token exchange (the recording answers it)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del scopes, kwargs
        return AccessToken("recorded-arm-token", 2**31)


class _Target:
    subscription_id = SUBSCRIPTION
    arm_url = None  # Azure itself: a data plane is addressed by its own host name
    credential = _Credential()


class _Recorded(BaseAdapter):
    """Answers HTTP requests from the case's recording (`http`); never opens a socket."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self._answers = answers

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        del kwargs
        key = f"{request.method} {urllib.parse.urlsplit(request.url or '').path}"
        if key not in self._answers:
            raise AssertionError(f"the case records no answer to {key}")
        answer = self._answers[key]
        body = b"" if answer.get("json") is None else json.dumps(answer["json"]).encode()
        response = requests.Response()
        response.status_code = int(answer["status"])
        response.headers = CaseInsensitiveDict(answer.get("headers") or {})
        if body:
            response.headers.setdefault("Content-Type", "application/json")
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class _RoleDefinitions:
    """The role definition list as Azure answered it (the case's `role_definitions`); the
    reconciler itself picks the one of the role's name, as it does with Azure's answer."""

    def __init__(self, answer: list[dict[str, Any]]) -> None:
        self._answer = answer

    def list(self, scope: str, filter: str | None = None) -> list[dict[str, Any]]:
        del scope, filter
        return list(self._answer)


class _Authorization:
    def __init__(self, role_definitions: list[dict[str, Any]]) -> None:
        self.role_definitions = _RoleDefinitions(role_definitions)


class _Clients:
    """Makes no calls: desired() and diff work from the case's recorded data only."""

    target = _Target()

    def __init__(self, case: dict[str, Any]) -> None:
        self.authorization = _Authorization(case.get("role_definitions", []))
        self._http = case.get("http", {})

    def _transport_kwargs(self) -> dict[str, Any]:
        session = requests.Session()
        session.mount("https://", _Recorded(self._http))
        session.mount("http://", _Recorded(self._http))
        return {"transport": RequestsTransport(session=session), "retry_total": 0}


def _model_for(kind: str) -> type[Resource]:
    found = kinds.spec(kind)
    if found is None or found.model is None:
        raise LookupError(f"no managed kind {kind!r} is registered")
    return found.model


def _live(wire: dict[str, Any] | None) -> Live | None:
    if wire is None:
        return None
    return Live(
        id=str(wire.get("id", "")),
        fields=flatten(wire),
        raw=wire,
        etag=wire.get("etag"),
        managed=is_managed(wire.get("tags")),
    )


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return data


CASE_FILES = sorted(CASES.glob("*/*.yaml"))


@pytest.mark.parametrize("path", CASE_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in CASE_FILES])
def test_case(path: Path) -> None:
    case = _load(path)
    kind = path.parent.name
    model = _model_for(kind)
    parent = case.get("parent", {})
    resource = model.model_validate(case["resource"])
    for value in parent.values():  # e.g. a deployment's account
        assert isinstance(resource, ChildResource)
        resource.adopt_parent(value)
    outputs: dict[str, Any] = case.get("outputs", {})
    others = {address: _live(wire) for address, wire in case.get("others", {}).items()}

    def output_of(address: str, name: str) -> Any:
        key = f"{address}.{name}"
        return outputs[key] if key in outputs else Unknown(key)

    reconciler = reconciler_for(resource)
    live = _live(case.get("live"))

    def live_of(address: str) -> Live | None:  # the resource's own live state, as read
        return live if address == resource.address else others.get(address)

    ctx = Context(SEED, _Clients(case), output_of, live_of)  # type: ignore[arg-type]
    if "http" in case:  # the real read, its HTTP answered by the recording (a fresh
        # reconciler: the shared one keeps data-plane clients of earlier cases)
        live = type(reconciler)().read(ctx, resource)
    if live is not None:
        live = reconciler.refine(ctx, resource, live)
    desired = reconciler.desired(ctx, resource)
    changes = reconciler.changes(desired, live)
    expect = case["expect"]
    if live is None:
        action = Action.CREATE
    elif any(c.requires_replacement for c in changes):
        action = Action.REPLACE
    else:
        action = Action.UPDATE if changes else Action.UNCHANGED
    assert action.value == expect["action"]
    if "changes" in expect:
        got = [
            {"path": c.path, "before": c.before, "after": c.after}
            | ({"requires_replacement": True} if c.requires_replacement else {})
            for c in changes
        ]
        assert got == expect["changes"]
    for path_ in expect.get("includes", []):
        assert path_ in {c.path for c in changes}
    if "id" in expect:
        assert reconciler.resource_id(ctx, resource) == expect["id"]


def test_every_managed_kind_has_cases() -> None:
    from nsc_reconcile.resources import supported_kinds

    missing = [k for k in supported_kinds() if not (CASES / k).is_dir()]
    assert missing == []
