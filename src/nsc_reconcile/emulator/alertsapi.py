"""The Alerts Management API over the alerts alerting.py fired, as ``azure-mgmt-alertsmanagement``
1.0.1 calls it (api-version 2019-05-05-preview): ``Alerts_GetAll`` (``GET /subscriptions/{s}/
providers/Microsoft.AlertsManagement/alerts``: the spec's filters, sorting, ``select``, time
ranges, paging through ``nextLink``) and ``Alerts_GetById``. Shapes and parameters follow
specification/alertsmanagement/resource-manager/Microsoft.AlertsManagement/preview/
2019-05-05-preview/AlertsManagement.json; other operations of the provider answer 404.
"""

from __future__ import annotations

import copy
import re
import time
import urllib.parse
from datetime import datetime
from typing import Any

from nsc_reconcile.emulator.alerting import Alerting
from nsc_reconcile.emulator.kql import row_time
from nsc_reconcile.emulator.protocol import ArmError, Request, Response

__all__ = ["API_VERSION", "AlertsPlane"]

API_VERSION = "2019-05-05-preview"
_PATH = re.compile(r"^/subscriptions/([^/]+)/providers/microsoft\.alertsmanagement(/.*)?$", re.I)
_TIME_RANGES = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
_SORT_FIELDS = (
    "name",
    "severity",
    "alertState",
    "monitorCondition",
    "targetResource",
    "targetResourceName",
    "targetResourceGroup",
    "targetResourceType",
    "startDateTime",
    "lastModifiedDateTime",
)
# Query parameter -> essentials field it filters on (case-insensitive equality).
_FILTERS = {
    "targetResource": "targetResource",
    "targetResourceGroup": "targetResourceGroup",
    "monitorService": "monitorService",
    "monitorCondition": "monitorCondition",
    "severity": "severity",
    "alertState": "alertState",
    "alertRule": "alertRule",
    "smartGroupId": "smartGroupId",
}
_DEFAULT_PAGE, _MAX_PAGE, _MAX_PAGE_WITH_CONTEXT = 25, 250, 25


def _bad(message: str) -> ArmError:
    # The spec gives no codes for invalid filters; this one is ours, not from a recording.
    return ArmError(400, "BadRequest", message)


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise _bad(f"The value '{value}' of '{name}' is not a boolean.")
    return value.lower() == "true"


class AlertsPlane:
    """Answers ``/subscriptions/{s}/providers/Microsoft.AlertsManagement/...`` on the ARM port."""

    def __init__(self, alerting: Alerting) -> None:
        self.alerting = alerting

    @staticmethod
    def serves(path: str) -> bool:
        return _PATH.match(path) is not None

    def handle(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except ArmError as error:
            return error.response()

    def _dispatch(self, request: Request) -> Response:
        match = _PATH.match(request.path)
        if match is None:
            raise ArmError(404, "NotFound", f"The requested path '{request.path}' is not served.")
        subscription, rest = match.group(1), (match.group(2) or "").strip("/")
        version = request.query.get("api-version")
        if version is None:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        world = self.alerting.world
        if subscription.lower() != world.subscription_id.lower():
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{subscription}' could not be found.",
            )
        if version != API_VERSION:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are "
                f"'{API_VERSION}'.",
            )
        parts = rest.split("/") if rest else []
        if not parts or parts[0].lower() != "alerts" or len(parts) > 2:
            raise ArmError(
                404, "NotFound", f"The emulator does not serve '{request.path}' of this provider."
            )
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
        if len(parts) == 2:
            return self._get(parts[1])
        return self._list(request)

    def _get(self, alert_id: str) -> Response:
        for alert in self.alerting.alerts():
            if str(alert["id"]).rsplit("/", 1)[-1].lower() == alert_id.lower():
                return Response(200, _shown(alert, context=True, egress=False, select=None))
        # The spec gives no 404 code for an unknown alert; ARM's own is used.
        raise ArmError(404, "ResourceNotFound", f"The alert '{alert_id}' was not found.")

    def _list(self, request: Request) -> Response:
        query = request.query
        alerts = self.alerting.alerts()
        if "timeRange" in query and "customTimeRange" in query:
            raise _bad("Either timeRange or customTimeRange may be used, not both.")
        low, high = self._time_window(query)
        selected = []
        for alert in alerts:
            essentials = alert["properties"]["essentials"]
            started = row_time(essentials.get("startDateTime"))
            if started is None or not low <= started <= high:
                continue
            if all(_matches(essentials, p, query) for p in (*_FILTERS, "targetResourceType")):
                selected.append(alert)
        sort_by = query.get("sortBy", "lastModifiedDateTime")
        if sort_by not in _SORT_FIELDS:
            raise _bad(f"sortBy '{sort_by}' is not one of {', '.join(_SORT_FIELDS)}.")
        time_field = sort_by in ("startDateTime", "lastModifiedDateTime")
        order = query.get("sortOrder", "desc" if time_field else "asc")
        if order not in ("asc", "desc"):
            raise _bad(f"sortOrder '{order}' is not asc or desc.")
        selected.sort(key=lambda a: _sort_key(a, sort_by), reverse=order == "desc")
        context = _flag(query, "includeContext")
        egress = _flag(query, "includeEgressConfig")
        size = self._page_size(query, context)
        try:
            offset = int(query.get("ctoken", "0"))
        except ValueError:
            raise _bad("The continuation token is not valid.") from None
        page = selected[offset : offset + size]
        select = [f.strip() for f in query["select"].split(",")] if query.get("select") else None
        body: dict[str, Any] = {"value": [_shown(a, context, egress, select) for a in page]}
        if offset + size < len(selected):
            base = self.alerting.world.urls.get("arm") or ""
            following = urllib.parse.urlencode({**query, "ctoken": str(offset + size)})
            body["nextLink"] = f"{base}{request.path}?{following}"
        return Response(200, body)

    @staticmethod
    def _page_size(query: dict[str, str], context: bool) -> int:
        text = query.get("pageCount")
        if text is None:
            return _DEFAULT_PAGE
        limit = _MAX_PAGE_WITH_CONTEXT if context else _MAX_PAGE
        try:
            size = int(text)
        except ValueError:
            size = 0
        if not 1 <= size <= limit:
            raise _bad(f"pageCount must be between 1 and {limit}.")
        return size

    @staticmethod
    def _time_window(query: dict[str, str]) -> tuple[float, float]:
        """Start and end (epoch seconds) of the alerts listed: timeRange (default 1d) back
        from now, or customTimeRange ``<start>/<end>`` (ISO 8601, within 30 days)."""
        now = time.time()
        custom = query.get("customTimeRange")
        if custom is None:
            span = _TIME_RANGES.get(query.get("timeRange", "1d"))
            if span is None:
                raise _bad(f"timeRange must be one of {', '.join(_TIME_RANGES)}.")
            return now - span, now + 1.0
        start_text, _, end_text = custom.partition("/")
        start, end = _instant(start_text), _instant(end_text)
        if start is None or end is None or start > end:
            raise _bad("customTimeRange must be <start-time>/<end-time> in ISO 8601.")
        if start < now - _TIME_RANGES["30d"]:
            raise _bad("customTimeRange must be within 30 days from now.")
        return start, end


def _instant(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return row_time(parsed.isoformat())


def _matches(essentials: dict[str, Any], param: str, query: dict[str, str]) -> bool:
    wanted = query.get(param)
    if wanted is None:
        return True
    if param == "targetResourceType":  # the type's last segment, or the whole provider type
        target = str(essentials.get("targetResource") or "").split("/")
        full = "/".join(target[-3:-1]) if len(target) > 3 else ""
        shown = str(essentials.get("targetResourceType", ""))
        return wanted.lower() in (shown.lower(), full.lower())
    value = essentials.get(_FILTERS[param])
    return value is not None and str(value).rstrip("/").lower() == wanted.rstrip("/").lower()


def _sort_key(alert: dict[str, Any], field: str) -> str:
    if field == "name":
        return str(alert.get("name", "")).lower()
    return str(alert["properties"]["essentials"].get(field, "")).lower()


def _shown(
    alert: dict[str, Any], context: bool, egress: bool, select: list[str] | None
) -> dict[str, Any]:
    """An alert as one answer shows it: context and egressConfig only when asked (``{}``
    otherwise, as the spec's examples show), essentials projected by ``select``."""
    shown = copy.deepcopy(alert)
    props = shown["properties"]
    if not context:
        props["context"] = {}
    if not egress:
        props["egressConfig"] = {}
    if select:
        wanted = {name.lower() for name in select}
        props["essentials"] = {k: v for k, v in props["essentials"].items() if k.lower() in wanted}
    return shown
