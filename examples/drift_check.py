"""A scheduled drift check as a library call (docs/runbooks.md): load the desired state, plan
it against live state (reads only), and when anything drifted write the Markdown report, POST
it to a webhook and exit 2.

Runs where nsc-reconcile is installed (a Hybrid Runbook Worker, an Azure DevOps or GitHub
Actions job) under a managed identity or workload identity federation, which
DefaultAzureCredential finds by itself.

    python examples/drift_check.py desired_state.yaml [--env prod] [--subscription ID]
        [--report drift.md]

The webhook URL comes from DRIFT_WEBHOOK_URL (it holds a token: never on a command line,
never printed). Exit codes, as `nsc-reconcile plan --detailed-exitcode`: 0 no drift, 2 drift
found (reported), 1 the check itself failed (cannot load, sign in, read or post).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from nsc_reconcile import DesiredStateError, load_desired_state, plan
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.plans import Plan

NO_DRIFT, ERROR, DRIFT = 0, 1, 2
WEBHOOK_ENV = "DRIFT_WEBHOOK_URL"


def drifted(found: Plan) -> bool:
    """Drift: a write apply would make (create, update, replace) or a resource it refuses."""
    return found.has_changes or bool(found.blocked)


def payload(found: Plan, report: str) -> bytes:
    """The webhook body: `text` (Teams and Slack incoming webhooks show it) is the Markdown."""
    body = {
        "text": report,
        "environment": found.environment,
        "subscription_id": found.subscription_id,
        "summary": found.counts(),
    }
    return json.dumps(body).encode()


def post(url: str, body: bytes, timeout_s: float = 30.0) -> None:
    """POST ``body`` as JSON; raises OSError (with the host only) when it is not accepted."""
    host = urllib.parse.urlsplit(url).hostname or "?"
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            answer.read()
    except OSError as error:  # HTTPError, URLError, timeouts; never quote the URL (a token)
        reason = getattr(error, "code", None) or getattr(error, "reason", None) or error
        raise OSError(f"webhook at {host} did not accept the report ({reason})") from None


def target_for(args: argparse.Namespace, subscription_id: str | None) -> AzureTarget:
    """Azure (DefaultAzureCredential: managed identity, workload identity, az login), or an
    emulator for a demo or a test."""
    if args.emulator:
        return AzureTarget.for_emulator(args.emulator)
    subscription = args.subscription or subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise ValueError("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
    target = AzureTarget.for_azure(subscription)
    try:  # sign in once up front: one clear line instead of one error per resource
        target.credential.get_token("https://management.azure.com/.default")
    except Exception as error:
        from nsc_reconcile.auth_errors import describe_auth_error

        raise PermissionError(describe_auth_error(error)) from None
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report drift of a desired state.")
    parser.add_argument("file", type=Path, help="the desired state (desired_state.yaml)")
    parser.add_argument("--env", help="merge envs/ENV.yaml over the file")
    parser.add_argument("--subscription", help="wins over subscription_id and the environment")
    parser.add_argument("--report", type=Path, help="also write the Markdown report here")
    parser.add_argument("--emulator", metavar="URL", help="a local emulator's ARM URL")
    args = parser.parse_args(argv)
    try:
        state = load_desired_state(args.file, env=args.env)
        with Clients(target_for(args, state.subscription_id)) as clients:
            found = plan(state, clients)  # reads only
    except DesiredStateError as error:
        print(error, file=sys.stderr)
        return ERROR
    except Exception as error:
        print(f"drift check failed: {error}", file=sys.stderr)
        return ERROR
    if not drifted(found):
        print(f"no drift in {found.environment}: live state matches {args.file}")
        return NO_DRIFT
    report = found.render("markdown")
    print(report)
    if args.report is not None:
        args.report.write_text(report, encoding="utf-8")
    webhook = os.environ.get(WEBHOOK_ENV)
    if webhook:
        try:
            post(webhook, payload(found, report))
        except OSError as error:
            print(f"drift found, but {error}", file=sys.stderr)
            return ERROR
    return DRIFT


if __name__ == "__main__":
    raise SystemExit(main())
