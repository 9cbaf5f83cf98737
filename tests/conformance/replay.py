"""Replaying extracts of real recorded Azure sessions (Azure Service Operator cassettes, see
README.md here) against the emulator, exchange by exchange, and listing where it answers
otherwise. Talks to the emulator's ARM plane over loopback HTTP only."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

RECORDINGS = Path(__file__).resolve().parent / "recordings"
# Recorded ids carry zeroed (sometimes real, unscrubbed) subscription ids: all become ours.
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SUBSCRIPTION = re.compile(r"/subscriptions/[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}", re.IGNORECASE)
LRO_HEADERS = ("Azure-AsyncOperation", "Location")
# Exchanges that only read may be answered later than the recording's moment: the replay asks
# again until the emulator shows the recorded answer or this many seconds have passed.
SETTLE_SECONDS = 6.0

# Body paths the product reads: when the recording has one, the emulator must have it too.
PRODUCT_READS = (
    "id",
    "name",
    "location",
    "kind",
    "sku",
    "properties.provisioningState",
    "properties.state",
    "properties.customDnsConfigs",
    "properties.networkInterfaces",
    "properties.privateLinkServiceConnections",
    "properties.manualPrivateLinkServiceConnections",
    "properties.privateDnsZoneConfigs",
    "properties.ipConfigurations",
    "properties.endpoint",
    "properties.customSubDomainName",
    "properties.publicNetworkAccess",
    "properties.networkAcls",
    "properties.fullyQualifiedDomainName",
    "properties.version",
    "properties.vaultUri",
    "properties.model",
    "properties.aRecords",
    "properties.registrationEnabled",
    "properties.virtualNetwork",
    "properties.immutableId",
    "properties.endpoints",
    "properties.actions",
    "properties.criteria",
    "properties.enabled",
    "properties.scopes",
    "properties.principalId",
    "properties.principalType",
    "properties.roleDefinitionId",
    "properties.customerId",
    "properties.access",
    "properties.direction",
    "properties.priority",
    "properties.destinationPortRange",
    "properties.nodeResourceGroup",
    "properties.identityProfile.kubeletidentity.resourceId",
    "properties.identityProfile.kubeletidentity.clientId",
    "properties.identityProfile.kubeletidentity.objectId",
    "properties.oidcIssuerProfile.issuerURL",
)
# The ARM types the product reads or writes (src/nsc_reconcile/resources): each should have a
# recording; docs/emulator.md names those that have none.
PRODUCT_TYPES = (
    "Microsoft.Resources/resourceGroups",
    "Microsoft.CognitiveServices/accounts",
    "Microsoft.CognitiveServices/accounts/deployments",
    "Microsoft.DBforPostgreSQL/flexibleServers",
    "Microsoft.DBforPostgreSQL/flexibleServers/databases",
    "Microsoft.Network/privateEndpoints",
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
    "Microsoft.Network/networkInterfaces",
    "Microsoft.Network/virtualNetworks",
    "Microsoft.Network/virtualNetworks/subnets",
    "Microsoft.Network/networkSecurityGroups",
    "Microsoft.Network/networkSecurityGroups/securityRules",
    "Microsoft.Network/privateDnsZones",
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    "Microsoft.Network/privateDnsZones/A",
    "Microsoft.OperationalInsights/workspaces",
    "Microsoft.OperationalInsights/workspaces/tables",
    "Microsoft.Insights/dataCollectionRules",
    "Microsoft.Insights/actionGroups",
    "Microsoft.Insights/scheduledQueryRules",
    "Microsoft.KeyVault/vaults",
    "Microsoft.KeyVault/vaults/secrets",
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.ContainerRegistry/registries",
    "Microsoft.Authorization/roleAssignments",
    "Microsoft.Authorization/roleDefinitions",
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
)
# Values that must be equal, not only present (states and words the product branches on).
EQUAL_VALUES = (
    "properties.provisioningState",
    "properties.state",
    "status",
    "location",
    "kind",
    "properties.oidcIssuerProfile.enabled",
)
# Values of a recorded list's items that must be equal (a role definition's name, type, rights).
LIST_VALUES = (
    "properties.roleName",
    "properties.type",
    "properties.assignableScopes",
    "properties.permissions",
)
# Lists whose emptiness is behaviour (customDnsConfigs is [] until the endpoint's operation ends).
SAME_EMPTINESS = ("properties.customDnsConfigs",)


@dataclass(frozen=True)
class Exchange:
    """One recorded request and Azure's answer to it."""

    n: int
    step: str
    method: str
    path: str
    api_version: str
    request: Any
    status: int
    lro: tuple[str, ...]
    response: Any
    follows: int | None = None
    header: str | None = None
    # Why the emulator does not reproduce this answer (sent, not asserted; listed in the docs).
    unreproduced: str | None = None

    @property
    def arm_type(self) -> str:
        """The ARM type the path addresses, e.g. ``Microsoft.Network/privateEndpoints``."""
        return arm_type_of(self.path)


@dataclass(frozen=True)
class Recording:
    """The extract of one cassette: where it comes from, what it proves, its exchanges."""

    name: str
    source: dict[str, str]
    proves: str
    exchanges: tuple[Exchange, ...]

    @property
    def types(self) -> list[str]:
        """The ARM types written or read (operation polls excluded), in first-seen order."""
        seen: list[str] = []
        for exchange in self.exchanges:
            if exchange.step != "poll" and exchange.arm_type not in seen:
                seen.append(exchange.arm_type)
        return seen


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Mismatch:
    """Where the emulator's answer differs from the recorded one."""

    recording: str
    n: int
    step: str
    method: str
    path: str
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, recording: Recording, exchange: Exchange, problems: list[str]) -> Mismatch:
        return cls(
            recording.name, exchange.n, exchange.step, exchange.method, exchange.path, problems
        )

    def __str__(self) -> str:
        short = self.path if len(self.path) < 110 else "..." + self.path[-107:]
        return f"{self.recording} #{self.n} {self.step} {self.method} {short}: " + "; ".join(
            self.problems
        )


def arm_type_of(path: str) -> str:
    """``Microsoft.X/a/b`` for ``.../providers/Microsoft.X/a/{n}/b/{m}``; resource groups too."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" in lowered:
        i = len(lowered) - 1 - lowered[::-1].index("providers")
        namespace, rest = parts[i + 1], parts[i + 2 :]
        return "/".join([namespace, *rest[0::2]])
    if "resourcegroups" in lowered:
        return "Microsoft.Resources/resourceGroups"
    return "/".join(parts[:1])


def load_recordings(folder: Path = RECORDINGS) -> list[Recording]:
    """Every extract in ``folder``, sorted by name."""
    yaml = YAML(typ="safe")
    recordings = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"))
        exchanges = tuple(
            Exchange(
                n=int(item["n"]),
                step=str(item["step"]),
                method=str(item["method"]).upper(),
                path=str(item["path"]),
                api_version=str(item["api_version"]),
                request=item.get("request"),
                status=int(item["status"]),
                lro=tuple(item.get("lro") or ()),
                response=item.get("response"),
                follows=item.get("follows"),
                header=item.get("header"),
                unreproduced=item.get("unreproduced"),
            )
            for item in data["exchanges"]
        )
        recordings.append(
            Recording(
                name=path.stem,
                source=dict(data["source"]),
                proves=" ".join(str(data.get("proves", "")).split()),
                exchanges=exchanges,
            )
        )
    return recordings


def dig(body: Any, dotted: str) -> tuple[bool, Any]:
    """``(present, value)`` of a dotted path in a JSON body."""
    for part in dotted.split("."):
        if not isinstance(body, dict) or part not in body:
            return False, None
        body = body[part]
    return True, body


def _connection_states(body: Any) -> list[tuple[str, str]]:
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        return []
    states = []
    for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
        for connection in props.get(key) or []:
            state = (connection.get("properties") or {}).get("privateLinkServiceConnectionState")
            if isinstance(state, dict):
                states.append((str(state.get("status")), str(state.get("description"))))
    return states


def error_code(body: Any) -> str | None:
    """The ARM error code of a body, enveloped or flat."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    if isinstance(body, dict) and "code" in body and "id" not in body:
        return str(body["code"])
    return None


def recorded_codes(recordings: list[Recording]) -> dict[tuple[str, str], set[str]]:
    """Every error code Azure was recorded answering, by (ARM type lower-cased, step). Where
    recordings disagree (a private endpoint read after delete: the Network RP's NotFound in
    one, the gateway's ResourceNotFound in another), any recorded code is real."""
    codes: dict[tuple[str, str], set[str]] = {}
    for recording in recordings:
        for exchange in recording.exchanges:
            code = error_code(exchange.response)
            if code is not None:
                key = (exchange.arm_type.lower(), exchange.step)
                codes.setdefault(key, set()).add(code)
    return codes


def compare(
    recorded: Exchange,
    answer: Answer,
    subscription: str,
    alternatives: dict[tuple[str, str], set[str]] | None = None,
) -> list[str]:
    """What differs between the recorded answer and the emulator's, as short sentences.

    ``setup`` exchanges only rebuild the recording's world (a resource group, a VNet, the
    target of an endpoint): for them only success or failure must agree."""
    problems: list[str] = []
    if recorded.step == "setup":
        if (answer.status < 300) != (recorded.status < 300):
            problems.append(f"setup status {answer.status}, recorded {recorded.status}")
        # A setup operation's poll must still reach the recorded status before the replay
        # goes on (the recorded session waited for it too).
        wanted = dig(recorded.response, "status")[1]
        got = dig(answer.body, "status")[1]
        if wanted in ("Succeeded", "Failed", "Canceled") and got != wanted:
            problems.append(f"setup operation status {got!r}")
        return problems
    if answer.status != recorded.status:
        problems.append(f"status {answer.status}, recorded {recorded.status}")
    headers = {k.lower() for k in answer.headers}
    got = tuple(h for h in LRO_HEADERS if h.lower() in headers)
    wanted = tuple(h for h in LRO_HEADERS if h in recorded.lro)
    if got != wanted:
        problems.append(f"LRO headers {list(got)}, recorded {list(wanted)}")
    expected, body = recorded.response, answer.body
    if isinstance(expected, dict) and isinstance(expected.get("error"), dict):
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            problems.append(f"error body {body!r} is not the {{'error': {{...}}}} envelope")
        elif error.get("code") != expected["error"].get("code"):
            real = (alternatives or {}).get((recorded.arm_type.lower(), recorded.step), set())
            if error.get("code") not in real:
                problems.append(
                    f"error code {error.get('code')!r}, recorded {expected['error'].get('code')!r}"
                )
        return problems
    if isinstance(expected, dict) and "code" in expected and "id" not in expected:
        code = body.get("code") if isinstance(body, dict) else None
        if code != expected["code"]:
            problems.append(f"flat error code {code!r}, recorded {expected['code']!r}")
        return problems
    if not isinstance(expected, dict):
        return problems
    if not isinstance(body, dict):
        return [*problems, f"no JSON body, recorded one with keys {sorted(expected)[:6]}"]
    for path in PRODUCT_READS:
        present, value = dig(expected, path)
        if present and value is not None and not dig(body, path)[0]:
            problems.append(f"{path} missing")
    for path in EQUAL_VALUES:
        present, value = dig(expected, path)
        if present:
            mine = dig(body, path)[1]
            if mine != value:
                problems.append(f"{path} {mine!r}, recorded {value!r}")
    for path in SAME_EMPTINESS:
        present, value = dig(expected, path)
        if present and bool(value) != bool(dig(body, path)[1]):
            problems.append(f"{path} {dig(body, path)[1]!r}, recorded {value!r}")
    if recorded.step != "poll" and "id" in expected and isinstance(body.get("id"), str):
        wanted_id = SUBSCRIPTION.sub(f"/subscriptions/{subscription}", str(expected["id"]))
        wanted_id = wanted_id.lower()
        if body["id"].lower() != wanted_id:
            problems.append(f"id {body['id']!r}, recorded {expected['id']!r}")
    recorded_states = _connection_states(expected)
    if recorded_states and _connection_states(body) != recorded_states:
        problems.append(f"connection state {_connection_states(body)}, recorded {recorded_states}")
    return problems + _list_problems(expected, body, subscription)


def _list_problems(expected: dict[str, Any], body: dict[str, Any], subscription: str) -> list[str]:
    """A recorded list (``{"value": [...]}``, cut to the items the product uses): each item must
    be in the emulator's list, by name, with the recorded id (its form: a tenant-scope list
    names built-in role definitions without a subscription) and the LIST_VALUES."""
    recorded = expected.get("value")
    if not isinstance(recorded, list):
        return []
    listed = body.get("value")
    if not isinstance(listed, list):
        return [f"no value list, recorded {len(recorded)} items"]
    mine = {str(i.get("name", "")).lower(): i for i in listed if isinstance(i, dict)}
    problems = []
    for item in recorded:
        name = str(item.get("name", ""))
        found = mine.get(name.lower())
        if found is None:
            problems.append(f"list has no {name}")
            continue
        wanted_id = SUBSCRIPTION.sub(f"/subscriptions/{subscription}", str(item.get("id", "")))
        if str(found.get("id", "")).lower() != wanted_id.lower():
            problems.append(f"list item id {found.get('id')!r}, recorded {item.get('id')!r}")
        for path in LIST_VALUES:
            present, value = dig(item, path)
            if present and dig(found, path)[1] != value:
                problems.append(f"{name} {path} {dig(found, path)[1]!r}, recorded {value!r}")
    return problems


class Replayer:
    """Sends a recording's requests to the emulator at ``arm_url`` in order."""

    def __init__(
        self,
        arm_url: str,
        subscription: str,
        *,
        emulated: set[str],
        alternatives: dict[tuple[str, str], set[str]] | None = None,
        settle_seconds: float = SETTLE_SECONDS,
    ):
        self.arm_url = arm_url.rstrip("/")
        self.subscription = subscription
        self.emulated = {t.lower() for t in emulated}
        self.alternatives = alternatives or {}
        self.settle_seconds = settle_seconds
        # Exchanges not replayed: types the product never uses (and setup the emulator lacks).
        self.skipped: list[Exchange] = []
        # Exchanges marked ``unreproduced`` that did differ.
        self.unreproduced: list[Exchange] = []
        self.generated: dict[str, str] = {}  # recorded server-generated GUID -> the emulator's
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _localize(self, value: Any) -> Any:
        text = SUBSCRIPTION.sub(f"/subscriptions/{self.subscription}", json.dumps(value))
        for recorded, ours in self.generated.items():
            text = text.replace(recorded, ours)
        return json.loads(text)

    def _learn(self, recorded: Any, answered: Any) -> None:
        """Server-generated ids (an identity's principalId) differ between the recording and
        the emulator: later requests that quote the recorded one get ours."""
        if isinstance(recorded, dict) and isinstance(answered, dict):
            for key, value in recorded.items():
                self._learn(value, answered.get(key))
        elif (
            isinstance(recorded, str)
            and isinstance(answered, str)
            and recorded != answered
            and GUID.match(recorded)
            and GUID.match(answered)
        ):
            self.generated[recorded] = answered

    def send(self, method: str, url: str, body: Any = None) -> Answer:
        data = None if body is None else json.dumps(self._localize(body)).encode()
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": "Bearer replay"},
        )
        try:
            with self._opener.open(request, timeout=30) as response:
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, dict(error.headers), error.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(status, headers, parsed)

    def url_of(self, exchange: Exchange) -> str:
        path = self._localize(exchange.path)
        return f"{self.arm_url}{path}?api-version={exchange.api_version}"

    def replay(self, recording: Recording) -> list[Mismatch]:
        """Replay every exchange; reads are retried until they match or time runs out."""
        answers: dict[int, Answer] = {}
        mismatches = []
        product = {t.lower() for t in PRODUCT_TYPES}
        for exchange in recording.exchanges:
            arm_type = exchange.arm_type.lower()
            skipped = {e.n for e in self.skipped}
            if (
                (exchange.step not in ("poll", "setup") and arm_type not in product)
                or (exchange.step == "setup" and arm_type not in self.emulated)
                or (exchange.step == "poll" and exchange.follows in skipped)
            ):
                self.skipped.append(exchange)
                continue
            if exchange.step == "poll":
                origin = answers.get(exchange.follows or -1)
                header = exchange.header or "Azure-AsyncOperation"
                url = _header(origin.headers, header) if origin else None
                if not url and _is_setup(recording, exchange.follows):
                    continue  # a setup write the emulator finished at once: nothing to poll
                if not url:
                    problem = f"no {header} header in the answer to #{exchange.follows} to poll"
                    mismatches.append(Mismatch.of(recording, exchange, [problem]))
                    continue
            else:
                url = self.url_of(exchange)
            deadline = time.monotonic() + self.settle_seconds
            # A poll of a setup write only has to agree on success, like the write itself.
            judged = exchange
            if exchange.step == "poll" and _is_setup(recording, exchange.follows):
                judged = dataclasses.replace(exchange, step="setup")
            while True:
                answer = self.send(exchange.method, url, exchange.request)
                problems = compare(judged, answer, self.subscription, self.alternatives)
                if not problems or exchange.unreproduced or time.monotonic() > deadline:
                    break
                if exchange.method != "GET" and not _witnessed(
                    recording, exchange, answer, self.alternatives
                ):
                    break
                time.sleep(0.05)
            answers[exchange.n] = answer
            if answer.status < 300:
                self._learn(exchange.response, answer.body)
            if problems and exchange.unreproduced:
                self.unreproduced.append(exchange)
            elif problems:
                mismatches.append(Mismatch.of(recording, exchange, problems))
        return mismatches


def _witnessed(
    recording: Recording,
    exchange: Exchange,
    answer: Answer,
    alternatives: dict[tuple[str, str], set[str]] | None = None,
) -> bool:
    """Whether a write may be sent again: the emulator refused it with an error the recording
    shows Azure answering earlier to the same request (PrincipalNotFound while a new identity
    replicates; ReferencedResourceNotProvisioned while the parent is deleted), or one Azure was
    recorded answering to such a write in another session (the replay runs faster than the
    recorded session: a principal 16 s old there is 0.1 s old here)."""
    code = error_code(answer.body)
    if code is None:
        return False
    if code in (alternatives or {}).get((exchange.arm_type.lower(), exchange.step), set()):
        return True
    return any(
        e.n < exchange.n
        and e.method == exchange.method
        and e.path.lower() == exchange.path.lower()
        and error_code(e.response) == code
        for e in recording.exchanges
    )


def _is_setup(recording: Recording, n: int | None) -> bool:
    return any(e.n == n and e.step == "setup" for e in recording.exchanges)


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


# ---- the documentation of what the recordings prove (docs/emulator.md, README.md here) ----
def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].rstrip(".")
    return head if len(head) <= 220 else head[:217] + "..."


def fidelity_table(recordings: list[Recording]) -> str:
    """The "Fidelity" section of docs/emulator.md, generated from the extracts."""
    product = {t.lower() for t in PRODUCT_TYPES}
    replayed = [
        e
        for r in recordings
        for e in r.exchanges
        if e.step in ("poll", "setup") or e.arm_type.lower() in product
    ]
    covered = {
        e.arm_type.lower() for r in recordings for e in r.exchanges if e.step not in ("poll",)
    }
    types = {e.arm_type.lower() for e in replayed if e.step != "poll"}
    lines = [
        f"{len(replayed)} recorded exchanges of {len(recordings)} real sessions, over "
        f"{len(types)} ARM types, are replayed against the emulator by "
        "`tests/conformance/test_recordings.py` (status, polling headers, provisioning states "
        "and operation statuses, error codes and envelopes, the body keys the product reads).",
        "",
        "| recording | exchanges | types | what it proves |",
        "|---|---|---|---|",
    ]
    for recording in recordings:
        by_lower = {
            e.arm_type.lower(): e.arm_type
            for e in recording.exchanges
            if e.step not in ("poll", "setup")
        }
        own = sorted(by_lower.values(), key=str.lower)
        shown = ", ".join(f"`{t.split('/', 1)[1]}`" for t in own)
        lines.append(
            f"| `{recording.name}` | {len(recording.exchanges)} | {shown} | "
            f"{_first_sentence(recording.proves)} |"
        )
    missing = [t for t in PRODUCT_TYPES if t.lower() not in covered]
    lines += ["", "Types the product reads or writes with no recording (their behaviour follows"]
    lines += ["the REST specification only): " + ", ".join(f"`{t}`" for t in missing) + "."]
    unreproduced = [(r.name, e) for r in recordings for e in r.exchanges if e.unreproduced]
    if unreproduced:
        lines += ["", "Recorded answers sent but not asserted (artefacts of the recording):"]
        lines += [f"- `{name}` #{e.n}: {e.unreproduced}" for name, e in unreproduced]
    return "\n".join(lines) + "\n"


def sources_table(recordings: list[Recording]) -> str:
    """The sources section of tests/conformance/README.md."""
    lines = ["| extract | repository | path | commit |", "|---|---|---|---|"]
    for recording in recordings:
        source = recording.source
        lines.append(
            f"| `{recording.name}.yaml` | {source['repo']} | `{source['path']}` | "
            f"`{source['commit']}` |"
        )
    return "\n".join(lines) + "\n"


def write_docs(root: Path) -> None:
    """Rewrite the generated sections between their markers."""
    found = load_recordings()
    for path, name, text in (
        (root / "docs" / "emulator.md", "fidelity", fidelity_table(found)),
        (root / "tests" / "conformance" / "README.md", "sources", sources_table(found)),
    ):
        old = path.read_text(encoding="utf-8")
        new = re.sub(
            rf"(<!-- {name}:begin[^>]*-->\n).*?(<!-- {name}:end -->)",
            lambda m, text=text: m.group(1) + text + m.group(2),  # type: ignore[misc]
            old,
            flags=re.S,
        )
        path.write_text(new, encoding="utf-8")


if __name__ == "__main__":  # python -m tests.conformance.replay [--write]
    import sys

    if "--write" in sys.argv:
        write_docs(Path(__file__).resolve().parents[2])
    else:
        found = load_recordings()
        print(fidelity_table(found))
        print(sources_table(found))
