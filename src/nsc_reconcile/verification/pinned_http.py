"""An HTTP client for the `openai` SDK (3.x: ``httpx2``) whose TCP connections go to pinned
addresses, curl ``--resolve`` style: the URL, the Host header and TLS (SNI and the certificate
check) keep the service's real host name; only the connect goes where the verification's
network view says (the private endpoint's address, or its loopback route on the emulator).
A host that is not pinned is refused: nothing else is ever connected to.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpcore2
import httpx2

__all__ = ["PinnedBackend", "PinnedTransport", "pinned_client"]


class PinnedBackend(httpcore2.SyncBackend):
    """httpcore's own socket backend, connecting ``(host, port)`` to its pinned address."""

    def __init__(self, pins: Mapping[tuple[str, int], tuple[str, int]]) -> None:
        self._pins = {(host.lower(), port): to for (host, port), to in pins.items()}

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        to = self._pins.get((host.lower(), port))
        if to is None:
            raise httpcore2.ConnectError(f"{host}:{port} has no pinned address; not connecting")
        return super().connect_tcp(to[0], to[1], timeout, local_address, socket_options)


def _as_httpx(error: Exception, request: httpx2.Request) -> Exception:
    """httpcore's error as the httpx error of the same name (what the SDK classifies)."""
    for cls in type(error).__mro__:
        mapped = getattr(httpx2, cls.__name__, None)
        if isinstance(mapped, type) and issubclass(mapped, httpx2.TransportError):
            return mapped(str(error), request=request)
    return error


class _Body(httpx2.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], request: httpx2.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except httpcore2.TimeoutException as error:  # timeouts first: the SDK retries them
            raise _as_httpx(error, self._request) from error
        except (httpcore2.NetworkError, httpcore2.ProtocolError) as error:
            raise _as_httpx(error, self._request) from error

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class PinnedTransport(httpx2.BaseTransport):
    """An httpx transport over an httpcore connection pool with a ``PinnedBackend``."""

    def __init__(
        self, pins: Mapping[tuple[str, int], tuple[str, int]], ssl_context: ssl.SSLContext
    ) -> None:
        self._pool = httpcore2.ConnectionPool(
            ssl_context=ssl_context, network_backend=PinnedBackend(pins)
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.SyncByteStream)
        core = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = self._pool.handle_request(core)
        except (httpcore2.TimeoutException, httpcore2.NetworkError, httpcore2.ProtocolError) as e:
            raise _as_httpx(e, request) from e
        assert isinstance(answer.stream, Iterable)
        return httpx2.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, request),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def pinned_client(
    pins: Mapping[tuple[str, int], tuple[str, int]],
    ssl_context: ssl.SSLContext,
    timeout: float = 30.0,
) -> httpx2.Client:
    """An ``httpx2.Client`` (for ``AzureOpenAI(http_client=...)``) that connects
    ``(host name, port)`` only to its pinned ``(address, port)``, verifying TLS against the host
    name with ``ssl_context``. No proxy from the environment, no redirects."""
    return httpx2.Client(
        transport=PinnedTransport(pins, ssl_context),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
    )
