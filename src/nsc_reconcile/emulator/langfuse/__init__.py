"""LangFuse v3 as it runs on the emulated AKS cluster: the public API subset that the
``langfuse`` SDK and plain HTTP clients use, served (plain HTTP, like the in-cluster Service)
for each Deployment whose image is LangFuse web, reached at its Service's cluster IP through
the emulator's ``Network``.

Served (web/src/pages/api/public/* of LangFuse v3): ``GET /api/public/health``,
``GET /api/public/projects``, ``POST /api/public/otel/v1/traces`` (OTLP protobuf or JSON,
gzip), ``POST /api/public/ingestion`` (207 per-event results), ``GET
/api/public/traces/{traceId}``; Basic auth ``public_key:secret_key`` against the project keys
created by the headless init (``LANGFUSE_INIT_*``) each time the pods start: a key is added
only when its public key is new, so a secret key changed later in the Secret (or Key Vault)
is refused with 401, as on a real installation. Written data is readable after
``visible_after_seconds`` (LangFuse ingests asynchronously).

Approximations (said plainly): the data lives in memory per web Deployment (not in the
declared PostgreSQL/ClickHouse; it survives a re-created Deployment and is cleared by the
emulator's reset); health is always OK while a pod runs (no database check); costs and usage
are zero; no rate limits, no media, no other routes (they answer Next.js's 404 page).

Modules: ``workloads`` (pods, headless init, routes), ``web`` (the HTTP API), ``store``
(keys, traces, ingestion events), ``otel`` (OTLP bodies to ingestion events).
"""

from __future__ import annotations

from nsc_reconcile.emulator.langfuse.web import LangfuseWeb
from nsc_reconcile.emulator.langfuse.workloads import LangfuseWorkloads

__all__ = ["LangfuseWeb", "LangfuseWorkloads"]
