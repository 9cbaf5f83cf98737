"""An azure-core transport that answers the product's SDK calls from recorded real Azure
sessions (the extracts in recordings/), for the resources it is bound to.

Every request still goes to the emulator, so the rest of the world stays consistent (a private
endpoint's NIC exists, a zone group has a parent); but for a bound resource the SDK receives
what Azure answered in the recording instead, in the recorded order: the create's 201 with
``customDnsConfigs: []``, the polls that say Creating, the vault that says RegisteringDns.
Names, ids and subscriptions in recorded answers are rewritten to the product's.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.core.rest import HttpRequest
from azure.core.rest._requests_basic import RestRequestsTransportResponse

from tests.conformance.replay import SUBSCRIPTION, Exchange, Recording

POLL_PREFIX = "/_replay/operations/"
_RG = re.compile(r"/resourceGroups/([^/]+)", re.IGNORECASE)


@dataclass
class Binding:
    """One product resource answered from one recorded resource's exchanges."""

    product_id: str
    recorded_id: str
    exchanges: list[Exchange]  # the recorded resource's own exchanges, cassette order
    polls: dict[int, list[Exchange]]  # n of a write -> the polls that followed it
    last_n: int = -1  # the recorded exchange served last
    served: list[tuple[str, int]] = field(default_factory=list)  # (method, n) in order

    def next(self, method: str) -> Exchange | None:
        """The recorded answer for the product's next ``method`` request, or None to let the
        emulator answer. A read gets the recorded read that comes next if no write lies
        before it (so a read before the recorded create is the emulator's 404), else the last
        read served again (the state stays as recorded); a write gets the next recorded
        write of that method."""
        later = [e for e in self.exchanges if e.n > self.last_n]
        if method == "GET":
            if later and later[0].method == "GET":
                return later[0]
            if self.served and self.served[-1][0] == "GET":
                return next(e for e in self.exchanges if e.n == self.served[-1][1])
            return None
        return next((e for e in later if e.method == method), None)


def bind(recording: Recording, recorded_id: str, product_id: str) -> Binding:
    """The exchanges of ``recorded_id`` (a path in ``recording``) for ``product_id``; those
    marked unreproduced (re-recording artefacts) are left out."""
    own = [
        e
        for e in recording.exchanges
        if e.step != "poll" and e.path.lower() == recorded_id.lower() and not e.unreproduced
    ]
    if not own:
        raise ValueError(f"{recording.name} has no exchange for {recorded_id}")
    polls: dict[int, list[Exchange]] = {}
    for exchange in recording.exchanges:
        if exchange.step == "poll" and exchange.follows is not None:
            polls.setdefault(exchange.follows, []).append(exchange)
    return Binding(product_id, recorded_id, own, polls)


class ReplayTransport(HttpTransport[Any, Any]):
    """Sends everything to ``inner`` (the emulator); answers bound resources from recordings."""

    def __init__(self, inner: HttpTransport[Any, Any], subscription: str, bindings: list[Binding]):
        self.inner = inner
        self.subscription = subscription
        self.bindings = {b.product_id.lower(): b for b in bindings}
        self._polls: dict[str, tuple[Binding, list[Exchange]]] = {}
        self._lock = threading.RLock()
        # (method, path, status, "recorded"|"recorded poll"|"" for the emulator's, recorded n)
        self.log: list[tuple[str, str, int, str, int]] = []

    # ---- HttpTransport ------------------------------------------------------------------
    def __enter__(self) -> ReplayTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.inner.__exit__(*args)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def send(self, request: Any, **kwargs: Any) -> Any:
        path = urlsplit(request.url).path
        if path.startswith(POLL_PREFIX):
            return self._poll(request, path[len(POLL_PREFIX) :])
        binding = self.bindings.get(path.lower())
        if binding is None:
            response = self.inner.send(request, **kwargs)
            self._note(request.method, path, response.status_code, "")
            return response
        forwarded = self.inner.send(request, **kwargs)  # keep the emulated world in step
        with self._lock:
            recorded = binding.next(request.method)
            if recorded is None:
                self._note(request.method, path, forwarded.status_code, "")
                return forwarded
            binding.last_n = recorded.n
            binding.served.append((request.method, recorded.n))
        headers = {"Content-Type": "application/json"}
        polls = binding.polls.get(recorded.n, [])
        for header in ("Azure-AsyncOperation", "Location"):
            if header in recorded.lro:
                token = f"{len(self._polls)}"
                self._polls[token] = (binding, [p for p in polls if p.header in (None, header)])
                headers[header] = _base(request.url) + POLL_PREFIX + token
        if "Retry-After" in recorded.lro or any(h in recorded.lro for h in headers):
            headers["Retry-After"] = "0"
        self._note(request.method, path, recorded.status, "recorded", recorded.n)
        return self._answer(request, recorded.status, headers, recorded.response, binding)

    # ---- helpers --------------------------------------------------------------------------
    def _poll(self, request: Any, token: str) -> Any:
        binding, polls = self._polls[token]
        with self._lock:
            recorded = polls.pop(0) if len(polls) > 1 else (polls[0] if polls else None)
        if recorded is None:  # the recording polled nothing: done
            return self._answer(request, 200, {}, {"status": "Succeeded"}, binding)
        headers = {"Content-Type": "application/json"}
        if recorded.status == 202:  # keep polling here
            headers["Location"] = request.url
            headers["Retry-After"] = "0"
        self._note("GET", urlsplit(request.url).path, recorded.status, "recorded poll", recorded.n)
        return self._answer(request, recorded.status, headers, recorded.response, binding)

    def _note(self, method: str, path: str, status: int, source: str, n: int = -1) -> None:
        with self._lock:
            self.log.append((method, path, status, source, n))

    def _rewrite(self, body: Any, binding: Binding) -> Any:
        if body is None:
            return None
        text = json.dumps(body)
        text = re.sub(re.escape(binding.recorded_id), binding.product_id, text, flags=re.IGNORECASE)
        text = SUBSCRIPTION.sub(f"/subscriptions/{self.subscription}", text)
        recorded_rg = _RG.search(binding.recorded_id)
        product_rg = _RG.search(binding.product_id)
        if recorded_rg and product_rg:
            text = re.sub(
                f"/resourceGroups/{re.escape(recorded_rg.group(1))}/",
                f"/resourceGroups/{product_rg.group(1)}/",
                text,
                flags=re.IGNORECASE,
            )
        recorded_name = binding.recorded_id.rsplit("/", 1)[-1]
        product_name = binding.product_id.rsplit("/", 1)[-1]
        # Recorded names are unique random strings (asotest-keyvault-ngmgjs): rename them
        # everywhere, so that a vaultUri or an FQDN names the product's resource.
        text = re.sub(re.escape(recorded_name), product_name, text, flags=re.IGNORECASE)
        return json.loads(text)

    def _answer(
        self, request: Any, status: int, headers: dict[str, str], body: Any, binding: Binding
    ) -> Any:
        raw = requests.Response()
        raw.status_code = status
        raw.reason = "Recorded"
        raw.url = request.url
        rewritten = self._rewrite(body, binding)
        content = b"" if rewritten is None else json.dumps(rewritten).encode()
        raw._content = content
        raw.raw = io.BytesIO(content)
        raw.headers.update(headers)
        if isinstance(request, HttpRequest):  # the SDKs built on azure.core.rest
            response = RestRequestsTransportResponse(  # type: ignore[no-untyped-call]
                request=request, internal_response=raw
            )
            response.read()
            response.close()
            return response
        return RequestsTransportResponse(request, raw)


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


__all__ = ["Binding", "ReplayTransport", "bind"]
