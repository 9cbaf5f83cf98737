"""Command-line interface: `python -m nsc_reconcile <command>` and `nsc-reconcile`.

Thin: parses arguments, calls the library, renders results, maps outcomes to exit codes
(0 ok, 1 error, 2 changes present, 3 verification failed, 130 interrupted by Ctrl-C).
Errors are one clear message, no traceback unless `--debug`. Ctrl-C: interrupts.py.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn, cast

import click
from rich.console import Console

from nsc_reconcile.cli_conventions import (
    BUNDLED,
    NscGroup,
    check_targets,
    env_option,
    version_option,
)
from nsc_reconcile.errors import DesiredStateError
from nsc_reconcile.interrupts import EXIT_INTERRUPTED, Interrupts
from nsc_reconcile.progress import ConsoleProgress
from nsc_reconcile.redaction import RedactingFilter, Redactor

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients
    from nsc_reconcile.engine import Engine, Progress
    from nsc_reconcile.events import JsonProgress
    from nsc_reconcile.model.state import DesiredState
    from nsc_reconcile.plans import ApplyResult, Plan

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_VERIFY_FAILED = 3  # verify: at least one check failed
EXIT_STEP_FAILED = 3  # rotate: a step failed (the run stopped there)

# The secret values this process handles (one CLI run = one process): redacted everywhere.
REDACTOR = Redactor()
# Ctrl-C: main() installs it; apply lets the first one stop its writes cleanly.
INTERRUPTS = Interrupts()

out = Console(soft_wrap=False)
out_console = out
err = Console(stderr=True, soft_wrap=True)
_EVENTS: list[JsonProgress] = []  # the --json-events sink of this run, when asked for

file_argument = click.argument(
    "file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE"
)


@click.group(
    cls=NscGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Make an Azure environment match a declared desired state: idempotent, private-only, "
    "provable.",
)
@version_option
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors, and log "
              "everything on stderr (secret values redacted). Anywhere on the line.")  # fmt: skip
def cli(debug: bool) -> None:
    _ = debug  # read by main() before click runs, so that even parse errors honour it


@cli.command()
@file_argument
@env_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format; json: one document with every problem "
              "(file, line, column, field, message), see docs/plan-format.md.")  # fmt: skip
def validate(file: Path, env: str | None, fmt: str) -> int:
    """Load and check FILE (schema, names, references, policy). No network. Exit 0 valid,
    1 problems (every one is listed)."""
    from nsc_reconcile.graph import build_graph
    from nsc_reconcile.loader import load_desired_state
    from nsc_reconcile.summary import summarize, validation_document

    if fmt == "json":
        try:
            state = load_desired_state(file, env=env)
        except DesiredStateError as error:
            _write_json(validation_document(str(file), None, None, error.problems))
            return EXIT_ERROR
        graph, _ = build_graph(state)
        _write_json(validation_document(str(file), state, graph, []))
        return EXIT_OK
    state = load_desired_state(file, env=env)
    graph, _ = build_graph(state)
    out.print(summarize(state, graph), highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


emulator_option = click.option(
    "--emulator",
    "emulator_url",
    is_flag=False,
    flag_value=BUNDLED,
    default=None,
    metavar="[URL]",
    help="Talk to a local emulator instead of Azure: a running emulator's `arm` URL, or no "
    "URL to start the bundled one in-process with the baseline world.",
)
parallelism_option = click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Resources written at the same time (within dependency order).",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format.",
)


def _enable_events(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--json-events: from here on every stderr line of this run is a JSON object."""
    if not value or _EVENTS:
        return
    from nsc_reconcile.events import EventWriter, JsonProgress, MessageStream

    writer = EventWriter(REDACTOR.redact)
    _EVENTS.append(JsonProgress(writer))
    # status lines and errors become `message` and `error` events
    err.file = cast("IO[str]", MessageStream(writer))


def _reset_events() -> None:
    """Back to plain stderr (main() runs more than once in one process in tests)."""
    for progress in _EVENTS:
        progress.close()
    _EVENTS.clear()
    err.file = None  # type: ignore[assignment]  # rich: None means sys.stderr when writing


json_events_option = click.option(
    "--json-events", is_flag=True, expose_value=False, is_eager=True, callback=_enable_events,
    help="CI logs: every stderr line is a JSON object (JSON Lines): one per engine event "
    "(start, retry, wait, done: time, address, action or outcome) and per status line; "
    "never a secret value. See docs/plan-format.md.",
)  # fmt: skip


@contextmanager
def _target(emulator_url: str | None, subscription_id: str | None) -> Iterator[tuple[Clients, str]]:
    """Clients for Azure or an emulator, and a one-line description of the target."""
    from nsc_reconcile.azure import AzureTarget, Clients
    from nsc_reconcile.cli_conventions import (
        check_emulator_subscription,
        emulator_url_problem,
        requested_subscription,
        resolve_subscription,
    )

    if emulator_url is None:
        subscription, source, note = resolve_subscription(requested_subscription(), subscription_id)
        if note:
            err.print(f"note: {note}", highlight=False)
        target = AzureTarget.for_azure(subscription)
        try:  # one clear error up front rather than one per resource
            target.credential.get_token("https://management.azure.com/.default")
        except Exception as error:
            from nsc_reconcile.auth_errors import describe_auth_error

            raise click.ClickException(describe_auth_error(error)) from None
        yield Clients(target), f"Azure subscription {subscription} ({source})"
        return
    if emulator_url == BUNDLED:
        from nsc_reconcile.emulator.app import Emulator

        with Emulator("baseline") as running:
            arm = str(running.info["arm"])
            check_emulator_subscription(str(running.info["subscription_id"]))
            yield Clients(AzureTarget.for_emulator(arm)), f"bundled emulator at {arm} (baseline)"
        return
    from nsc_reconcile.azure import NotLoopbackError

    problem = emulator_url_problem(emulator_url)
    if problem is not None:
        raise click.UsageError(problem)
    try:
        target = AzureTarget.for_emulator(emulator_url)
    except NotLoopbackError as error:
        raise click.UsageError(str(error)) from None
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise click.ClickException(
            f"cannot reach the emulator at {emulator_url} ({reason}); start one with "
            "`python -m nsc_reconcile emulator` and pass its `arm` URL, or use --emulator "
            "alone for the bundled one"
        ) from None
    check_emulator_subscription(target.subscription_id)
    yield Clients(target), f"emulator at {emulator_url}"


def _engine(
    state: DesiredState,
    clients: Clients,
    file: Path | None,
    parallelism: int,
    progress: Progress | None = None,
) -> Engine:
    from nsc_reconcile.engine import Engine

    events = _EVENTS[0] if _EVENTS else None
    return Engine(
        state,
        clients,
        parallelism=parallelism,
        progress=progress if progress is not None else events,
        # absolute: a saved plan is applied from any directory
        state_file=str(file.resolve()) if file is not None else None,
        redactor=REDACTOR,
        report_reads=events is not None,
    )


def _coloured(text: str, fmt: str, stream: IO[str] | None = None, *, verify: bool = False) -> str:
    """``text`` coloured for a terminal (colour.py: ``stream``, by default stdout, is a TTY and
    NO_COLOR unset or empty); only the text format, never JSON, Markdown or JUnit."""
    from nsc_reconcile import colour

    if fmt != "text" or not colour.wanted(stream or sys.stdout):
        return text
    return colour.verify_text(text) if verify else colour.plan_text(text)


def _configure_logging(debug: bool) -> None:
    """Errors only by default; with --debug everything, SDK traffic included. Every record
    goes through the redactor, so no secret value reaches the log at any verbosity."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(REDACTOR))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.ERROR, handlers=[handler])


@cli.command()
@file_argument
@env_option
@format_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the plan (JSON, any file name) for `apply PLANFILE`, which needs no "
              "--yes: the saved plan is the approval.")  # fmt: skip
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there are changes (0: none, 1: error).")  # fmt: skip
@click.option("--target", "targets", multiple=True, metavar="KIND/NAME",
              help="Only this resource (and what it depends on). Repeatable.")  # fmt: skip
@click.option("--verbose", is_flag=True,
              help="Every field of Kubernetes objects (default: one line per object: its "
              "action, how many fields, the fields that change).")  # fmt: skip
@click.option("--show-unchanged", is_flag=True,
              help="List unchanged resources too (default: only how many).")  # fmt: skip
@emulator_option
@parallelism_option
@json_events_option
def plan(
    file: Path,
    env: str | None,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    verbose: bool,
    show_unchanged: bool,
    emulator_url: str | None,
    parallelism: int,
) -> int:
    """Show what apply would change. Reads only; never writes."""
    from nsc_reconcile.loader import load_desired_state

    state = load_desired_state(file, env=env)
    check_targets(state, targets)  # before any connection: a typo costs no sign-in
    with _target(emulator_url, state.subscription_id) as (clients, where):
        err.print(f"planning {file} ({state.environment}) against {where}", highlight=False)
        from nsc_reconcile.engine import UnknownTargetError

        engine = _engine(state, clients, file, parallelism)
        try:
            result = engine.plan(list(targets) or None)
        except UnknownTargetError as error:
            raise click.UsageError(str(error)) from None
    shown = result.render(fmt, verbose=verbose, show_unchanged=show_unchanged)
    out_console.print(_coloured(shown, fmt), highlight=False, markup=False, soft_wrap=True)
    if out is not None:
        result.save(out)
        err.print(f"plan saved to {out}", highlight=False)
    if result.blocked:
        err.print(f"{len(result.blocked)} resource(s) blocked: see above", highlight=False)
        return EXIT_ERROR
    if detailed_exitcode and result.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE|PLANFILE")
@env_option
@format_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-replace", is_flag=True,
              help="Do the replacements each kind's replace policy allows: `automated` ones; "
              "`data-loss` ones also need --confirm-data-loss (or typing the address at the "
              "prompt); `manual` ones never.")  # fmt: skip
@click.option("--confirm-data-loss", "confirmed", multiple=True, metavar="KIND/NAME",
              help="Confirm a data-losing replacement of this resource (with "
              "--allow-replace). Repeatable.")  # fmt: skip
@click.option("--prune", is_flag=True,
              help="Also delete the plan's orphans (\"not declared; left in place\": they carry "
              "this environment's nsc-reconcile marks but FILE no longer declares them), after "
              "the writes and a separate confirmation (type their count or 'prune'; --yes "
              "does not confirm it). Never a shared one.")  # fmt: skip
@click.option("--allow-data-loss", is_flag=True,
              help="With --prune: also delete orphans that hold data (PostgreSQL servers and "
              "databases, Key Vault secrets, OpenAI accounts).")  # fmt: skip
@click.option("--target", "targets", multiple=True, metavar="KIND/NAME",
              help="Only this resource (and what it depends on). Repeatable.")  # fmt: skip
@emulator_option
@parallelism_option
@click.option("--wait-lock", "wait_lock", type=click.FloatRange(0), default=0, metavar="SECONDS",
              help="When another apply holds this environment's lease, wait up to SECONDS "
              "for it (default: refuse at once).")  # fmt: skip
@json_events_option
def apply(
    source: Path,
    env: str | None,
    fmt: str,
    yes: bool,
    allow_replace: bool,
    confirmed: tuple[str, ...],
    prune: bool,
    allow_data_loss: bool,
    targets: tuple[str, ...],
    emulator_url: str | None,
    parallelism: int,
    wait_lock: float,
) -> int:
    """Make live state match FILE, or apply exactly the saved plan PLANFILE (`plan --out`;
    recognised by its content, any name): it is the approval, so no --yes. Refuses, writing
    nothing, a plan with a blocked resource (leave it out with --target) or made for another
    subscription or --env; stops when the changes differ from the ones approved. --format
    json: stdout is one JSON document (the plan and the result). Ctrl-C while writing:
    no new write starts, the ones in flight are named and waited for, then the summary; a
    second Ctrl-C exits at once (exit 130)."""
    from nsc_reconcile.engine import PlanRefusedError, UnknownTargetError
    from nsc_reconcile.loader import load_desired_state

    saved = _load_plan(source)  # by content, whatever the name; None: a desired state
    file = source
    if saved is not None:
        file, env = _saved_plan_source(source, saved, env, targets)
    state = load_desired_state(file, env=env)
    check_targets(state, targets)  # before any connection: a typo costs no sign-in
    with _target(emulator_url, state.subscription_id) as (clients, where), ExitStack() as held:
        err.print(f"applying {file} ({state.environment}) to {where}", highlight=False)
        progress = _EVENTS[0] if _EVENTS else ConsoleProgress(sys.stderr)
        engine = _engine(state, clients, file, parallelism, progress)
        try:
            planned = saved if saved is not None else engine.plan(list(targets) or None)
        except UnknownTargetError as error:
            raise click.UsageError(str(error)) from None
        # What is approved, in full: every field, unchanged resources too.
        console = _plan_console(fmt)
        full = planned.render("text", verbose=True, show_unchanged=True)
        console.print(_coloured(full, "text", console.file), highlight=False, markup=False,
                      soft_wrap=True)  # fmt: skip
        if planned.blocked:
            raise _refused(
                planned,
                fmt,
                f"{len(planned.blocked)} resource(s) blocked (see above): the plan is not "
                "applied and nothing was written; resolve them, or leave them out with --target",
            )
        pruning = _prune_list(planned, prune, allow_data_loss)  # orphans this apply deletes
        if not planned.has_changes and not pruning:
            if fmt == "json":
                _json_report(planned)
            return EXIT_OK
        confirm = set(confirmed)
        if not yes and saved is None and planned.has_changes:  # a saved plan is the approval
            if not sys.stdin.isatty():
                raise click.UsageError("not a terminal: pass --yes to apply without a prompt")
            answer = click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                                  err=fmt == "json")  # fmt: skip
            if answer != "yes":
                err.print("apply cancelled; nothing was written", highlight=False)
                if fmt == "json":
                    _json_report(planned, error="apply cancelled; nothing was written")
                return EXIT_ERROR
            if allow_replace:
                confirm |= _confirm_data_loss(planned, confirm)
            if saved is None:  # what you approved is what is applied: check it again
                moved = engine.changed_since(planned)
                if moved:
                    raise _refused(
                        planned,
                        fmt,
                        "the changes differ from the ones you approved, so nothing was "
                        "written; run apply again to review them:\n  " + "\n  ".join(moved),
                    )
        if pruning:
            _confirm_prune(planned, pruning, fmt)  # its own confirmation, even with --yes
        try:
            engine.check_applicable(planned)  # before the lease: a refusal writes nothing
            held.enter_context(_apply_lease(clients, state, wait_lock))  # one apply at a time
            with progress, INTERRUPTS.writing(engine):
                result = engine.apply(
                    planned,
                    allow_replace=allow_replace,
                    saved=saved is not None,
                    confirm_data_loss=confirm,
                )
                if pruning and not result.interrupted:  # after the writes, as confirmed
                    pruned = engine.prune(planned, allow_data_loss=allow_data_loss)
                    result.resources += pruned
                    result.seconds += sum(r.seconds for r in pruned)
        except PlanRefusedError as refused:
            raise _refused(planned, fmt, str(refused)) from None
        except click.ClickException as refused:  # the lease: held by another apply
            raise _refused(planned, fmt, refused.format_message()) from None
    if fmt == "json":
        _json_report(planned, result)
    else:
        out_console.print(result.render(fmt), highlight=False, markup=False, soft_wrap=True)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_ERROR


@cli.command()
@file_argument
@env_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "junit"]),
              default="text", show_default=True, help="Report format.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report, in --format, to this file (e.g. JUnit XML for CI); "
              "stdout then shows the text report.")  # fmt: skip
@click.option("--resolver", metavar="IP:PORT", default=None,
              help="DNS server inside the VNet for the name-resolution checks (default with "
              "--emulator: the emulator's DNS server; otherwise those checks are "
              "skipped).")  # fmt: skip
@click.option("--smoke", "smoke_names", is_flag=False, flag_value="all", default=None,
              metavar="[NAMES]",
              help="Also run the smoke tests (seed phase 4): all, or a comma list of dns, "
              "postgres, openai, langfuse, alerts, network. They connect to the private "
              "endpoints as a client inside the VNet, make one OpenAI call, write one LangFuse "
              "trace and post one test event per agent event type (real alerts fire). Put FILE "
              "first or write --smoke=NAMES.")  # fmt: skip
@click.option("--from", "origin", type=click.Choice(["runner", "aks", "databricks"]),
              default="runner", show_default=True,
              help="Where the connectivity smokes run: this machine (inside the VNet), a Job "
              "on the AKS cluster, or a one-time run on the Databricks workspace.")  # fmt: skip
@click.option("--alert-wait", "alert_wait_s", type=click.FloatRange(min=0), default=None,
              metavar="SECONDS",
              help="How long the alerts smoke waits for every alert rule to fire (default: one "
              "evaluation period plus 5 minutes on Azure; two scaled periods on the "
              "emulator).")  # fmt: skip
@click.option("--require-gate", is_flag=True,
              help="Exit 3 when the desired state's gate (INFRA-READY) stays CLOSED, even if "
              "no check failed (a SKIP is not evidence).")  # fmt: skip
@emulator_option
@parallelism_option
@json_events_option
def verify(
    file: Path,
    env: str | None,
    fmt: str,
    out: Path | None,
    resolver: str | None,
    smoke_names: str | None,
    origin: str,
    alert_wait_s: float | None,
    require_gate: bool,
    emulator_url: str | None,
    parallelism: int,
) -> int:
    """Check the Definition of Done against live state, item by item, with evidence.
    Reads only (except --smoke). Exit 0 all passed (skips allowed), 3 a check failed (or, with
    --require-gate, the gate stayed CLOSED), 1 error."""
    from nsc_reconcile.loader import load_desired_state
    from nsc_reconcile.verification import default_resolver, run_checks
    from nsc_reconcile.verification.smokes import parse_smokes

    smoke: tuple[str, ...] = ()
    if smoke_names is not None:
        try:
            smoke = parse_smokes(smoke_names)
        except ValueError as error:
            hint = ""
            if smoke_names.endswith((".yaml", ".yml")):
                hint = f" (--smoke took {smoke_names} as its value: put FILE first)"
            raise click.UsageError(f"--smoke: {error}{hint}") from None
    state = load_desired_state(file, env=env)
    with _target(emulator_url, state.subscription_id) as (clients, where):
        try:
            dns_server = default_resolver(clients, resolver)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        err.print(f"verifying {file} ({state.environment}) against {where}", highlight=False)
        engine = _engine(state, clients, file, parallelism)
        report = run_checks(
            engine,
            resolver=dns_server,
            smoke=smoke,
            target=where,
            origin=origin,
            progress=lambda message: err.print(message, highlight=False, markup=False),
            alert_wait_s=alert_wait_s,
        )
    if out is not None:
        out.write_text(report.render(fmt), encoding="utf-8")
        err.print(f"report ({fmt}) written to {out}", highlight=False)
        fmt = "text"
    shown = _coloured(report.render(fmt), fmt, verify=True)
    out_console.print(shown, highlight=False, markup=False, soft_wrap=True)
    if require_gate and report.gate is None:
        err.print("--require-gate: FILE declares no gate", highlight=False)
        return EXIT_VERIFY_FAILED
    if require_gate and report.gate is not None and not report.gate.open:
        return EXIT_VERIFY_FAILED
    return EXIT_OK if report.ok else EXIT_VERIFY_FAILED


def _confirm_data_loss(planned: Plan, already: set[str]) -> set[str]:
    """Ask, per data-losing replacement not yet confirmed, to type its address."""
    from nsc_reconcile.changes import ReplacePolicy

    confirmed = set()
    for resource in planned.changes:
        if resource.replace_policy is not ReplacePolicy.DATA_LOSS or resource.address in already:
            continue
        typed = click.prompt(
            f"Replacing {resource.address} deletes its data. Type its address to confirm",
            default="",
        )
        if typed == resource.address:
            confirmed.add(resource.address)
        else:
            err.print(f"not confirmed: {resource.address} will not be replaced", highlight=False)
    return confirmed


@contextmanager
def _apply_lease(
    clients: Clients, state: DesiredState, wait_s: float, command: str = "apply"
) -> Iterator[None]:
    """Hold the environment's apply lease (lease.py) around the writes; a ClickException
    naming the holder when another apply has it."""
    from nsc_reconcile.lease import ApplyLease, LeaseHeldError, LeaseInfo

    lease = ApplyLease(clients, state.resource_group, state.environment, command=command)

    def waiting(holder: LeaseInfo) -> None:
        err.print(
            f"waiting up to {wait_s:.0f} s for the apply lease of {state.environment}: held "
            f"by {holder.describe()}",
            highlight=False,
        )

    try:
        lease.acquire(wait_s, on_wait=waiting)
    except LeaseHeldError as held:
        raise click.ClickException(str(held)) from None
    if lease.took_over:
        err.print(lease.took_over, highlight=False)
    try:
        yield
    finally:
        lease.release()
    if lease.lost:
        raise click.ClickException(f"{lease.lost}: another apply may have written too; run plan")


def _load_plan(path: Path) -> Plan | None:
    """The saved plan in ``path``, recognised by its content whatever the file is called;
    None when ``path`` is something else (a desired state: its loader explains problems)."""
    from nsc_reconcile.plans import read_plan

    if not path.is_file():
        return None
    try:
        return read_plan(path)
    except OSError as error:
        raise click.UsageError(f"{path}: cannot read it ({error.strerror or error})") from None
    except KeyError as error:
        raise click.UsageError(f"{path}: not a usable plan file: no {error} field") from None
    except (ValueError, TypeError) as error:
        raise click.UsageError(f"{path}: not a usable plan file: {error}") from None


def _saved_plan_source(
    source: Path, saved: Plan, env: str | None, targets: tuple[str, ...]
) -> tuple[Path, str]:
    """The desired-state file and environment the saved plan ``source`` was made from; a
    UsageError when this run asks for something else (writing nothing)."""
    if saved.state_file is None:
        raise click.UsageError(f"{source}: the plan does not name its desired-state file")
    if targets:
        raise click.UsageError("--target applies to a desired-state FILE; a saved plan "
                               "keeps the targets it was made with")  # fmt: skip
    if env is not None and env != saved.environment:
        raise click.UsageError(
            f"{source} is a plan for environment {saved.environment}, but --env asks for "
            f"{env}: nothing was written; make a plan with --env {env}, or apply this one "
            "without --env"
        )
    file = Path(saved.state_file)
    if not file.is_file():
        raise click.UsageError(
            f"{source} was made from {file}, which does not exist here; make the plan again"
        )
    return file, saved.environment


def _plan_console(fmt: str) -> Console:
    """Where apply shows the plan before it applies: stdout; stderr with --format json
    (stdout holds the JSON document only); nowhere with --json-events too (every stderr line
    is an event, and the document holds the plan)."""
    if fmt != "json":
        return out_console
    return Console(quiet=True) if _EVENTS else err


def _write_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def _json_report(
    planned: Plan, result: ApplyResult | None = None, error: str | None = None
) -> None:
    """apply --format json: the one document on stdout (docs/plan-format.md)."""
    from nsc_reconcile.plans import apply_document

    _write_json(apply_document(planned, result, REDACTOR.redact(error) if error else None))


def _prune_list(planned: Plan, prune: bool, allow_data_loss: bool) -> list[str]:
    """The addresses of the orphans `apply --prune` deletes (none without ``prune``); says
    on stderr which it leaves in place and why."""
    if not prune:
        return []
    from nsc_reconcile.orphans import to_prune

    for orphan in planned.orphans:
        why = orphan.refusal(allow_data_loss)
        if why is not None:
            err.print(f"--prune leaves {orphan.address} in place: {why}", highlight=False)
    for note in planned.orphans_not_searched:
        err.print(f"--prune: orphans {note}", highlight=False)
    return [o.address for o in to_prune(planned.orphans, allow_data_loss)]


def _confirm_prune(planned: Plan, addresses: list[str], fmt: str) -> None:
    """Ask for the prune's own confirmation: type the count of what is deleted or `prune`
    (read from stdin even when it is not a terminal, so `echo prune | ... --yes` works).
    Raises (writing nothing) when not confirmed, also when there is no input."""
    details = {o.address: o.details for o in planned.orphans if o.details}
    listing = "\n  ".join(
        f"{a}  {details[a]}" if a in details else a for a in addresses
    )  # a grant says who loses which role on what
    err.print(f"apply --prune deletes {len(addresses)} resource(s) not declared in the desired "
              f"state:\n  {listing}", highlight=False, markup=False)  # fmt: skip
    try:
        typed = click.prompt(
            f"Delete these {len(addresses)}? This cannot be undone. Type {len(addresses)} or "
            "'prune' to confirm",
            default="",
            show_default=False,
            err=True,
        )
    except (click.exceptions.Abort, EOFError, OSError):  # no input (closed, not readable)
        typed = ""
    if typed.strip() not in (str(len(addresses)), "prune"):
        raise _refused(
            planned,
            fmt,
            "prune not confirmed: nothing was written or deleted (type the number of resources "
            "to delete, or 'prune', when asked; --yes does not confirm a prune)",
        )


def _refused(planned: Plan, fmt: str, message: str) -> click.ClickException:
    """The error apply raises when it does not apply ``planned``; with --format json the
    document (the error, no result) is printed first, so stdout still holds one."""
    if fmt == "json":
        _json_report(planned, error=message)
    return click.ClickException(message)


@cli.command("docs")
@file_argument
@click.argument("documents", nargs=-1, metavar="[DOC]...",
                type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip
@env_option
@emulator_option
@click.option("--update", is_flag=True,
              help="Rewrite only the sections between nsc-reconcile markers of each DOC "
              "(default: docs.documents next to FILE), appending missing ones; a rerun "
              "changes no byte.")  # fmt: skip
@click.option("--check", is_flag=True,
              help="Exit 1 naming each DOC's stale or missing sections (for CI); writes "
              "nothing.")  # fmt: skip
@parallelism_option
def docs(
    file: Path,
    documents: tuple[Path, ...],
    env: str | None,
    emulator_url: str | None,
    update: bool,
    check: bool,
    parallelism: int,
) -> int:
    """Render the plan's documents (Infra_Manual.md 4.3, 6.6, 7.2, 7.3; TEAM_CREDENTIALS.md)
    from FILE and live state: ids, IPs, FQDNs, states, never a secret value. Without options,
    print the sections. Reads Azure only; writes nothing there."""
    from nsc_reconcile.documents import (
        DocumentError,
        begin_marker,
        check_document,
        default_documents,
        end_marker,
        render_documents,
        update_document,
    )
    from nsc_reconcile.loader import load_desired_state

    if update and check:
        raise click.UsageError("--update and --check exclude each other")
    if documents and not (update or check):
        raise click.UsageError("name documents with --update or --check")
    state = load_desired_state(file, env=env)
    with _target(emulator_url, state.subscription_id) as (clients, where):
        err.print(f"reading {file} ({state.environment}) from {where}", highlight=False)
        facts, sections = render_documents(_engine(state, clients, file, parallelism))
    if facts.pending:
        err.print(f"note: live state differs from {file} (" + ", ".join(facts.pending)
                  + "): the documents show live state", highlight=False)  # fmt: skip
    if not (update or check):
        for section, text in sections.items():
            sys.stdout.write(f"{begin_marker(section)}\n{text}{end_marker(section)}\n\n")
        return EXIT_OK
    paths = list(documents) or default_documents(state.docs.documents, file.parent)
    stale = False
    try:
        for path in paths:
            if update:
                changed = update_document(path, sections, state.docs.documents)
                err.print(f"{path}: {'updated' if changed else 'unchanged'}", highlight=False)
                continue
            status = check_document(path, sections, state.docs.documents)
            stale = stale or not status.current
            found = ", ".join(f"{section} ({why})" for section, why in status.problems)
            out_console.print(f"{path}: " + (f"stale: {found}" if found else "current"),
                              highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    except DocumentError as error:
        raise click.ClickException(str(error)) from None
    return EXIT_ERROR if stale else EXIT_OK


@cli.command("scan-docs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="PATH...")  # fmt: skip
@click.option("--desired-state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Also look for the current value of every sensitive Key Vault secret of "
              "FILE (read through the vault's data plane, compared in memory).")  # fmt: skip
@env_option
@emulator_option
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Accepted findings (JSON), e.g. .nsc-scan-baseline.json.")  # fmt: skip
@click.option("--update-baseline", is_flag=True,
              help="Write the current findings to --baseline as accepted (never a Key Vault "
              "value).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")  # fmt: skip
def scan_docs(
    paths: tuple[Path, ...],
    state_file: Path | None,
    env: str | None,
    emulator_url: str | None,
    baseline: Path | None,
    update_baseline: bool,
    fmt: str,
) -> int:
    """Find plain-text credentials in documents (files, directories). Reports
    file:line:column and the kind, never the text. Exit 0 clean, 1 new findings or error."""
    from nsc_reconcile.docscan import Baseline, ScanError, VaultValues, read_vault_values, scan

    if update_baseline and baseline is None:
        raise click.UsageError("--update-baseline needs --baseline FILE")
    if state_file is None and (env is not None or emulator_url is not None):
        raise click.UsageError("--env and --emulator apply to --desired-state FILE")
    try:
        accepted = Baseline.load(baseline) if baseline is not None else None
        vault: VaultValues | None = None
        notes: list[str] = []
        compared = ""
        if state_file is not None:
            from nsc_reconcile.loader import load_desired_state

            state = load_desired_state(state_file, env=env)
            with _target(emulator_url, state.subscription_id) as (clients, where):
                vault, notes = read_vault_values(state, clients, REDACTOR)
            compared = f"; compared with {len(vault.names)} Key Vault value(s) ({where})"
        result = scan(paths, vault, skip=[baseline] if baseline is not None else [])
    except ScanError as error:
        raise click.ClickException(str(error)) from None
    for note in notes:
        err.print(f"not compared: {note}", highlight=False)
    if accepted is not None and update_baseline:
        written = accepted.write(result.findings)
        err.print(f"baseline {baseline}: {written} accepted finding(s)", highlight=False)
    new = [f for f in result.findings if accepted is None or not accepted.accepts(f)]
    if fmt == "json":
        body = {"files": result.files, "findings": [f.to_json() for f in new],
                "accepted": len(result.findings) - len(new)}  # fmt: skip
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        for finding in new:
            out_console.print(finding.render(), highlight=False, markup=False, soft_wrap=True)
    skipped = len(result.findings) - len(new)
    err.print(
        f"scanned {result.files} file(s): {len(new)} finding(s)"
        + (f", {skipped} accepted by the baseline" if skipped else "")
        + compared,
        highlight=False,
    )
    return EXIT_ERROR if new else EXIT_OK


@cli.command()
@file_argument
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@env_option
@emulator_option
@click.option("--yes", is_flag=True, help="Run the steps (default: a dry run: print them, "
              "write nothing).")  # fmt: skip
def rotate(file: Path, keys: tuple[str, ...], env: str | None, emulator_url: str | None,
           yes: bool) -> int:  # fmt: skip
    """Rotate Key Vault secrets KEY... of FILE (seed §9): generated values, OpenAI account
    keys (no moment with a revoked key in Key Vault). Prints the steps; --yes runs them,
    holding the apply lease, and stops at the first failure saying how to finish by hand.
    Exit 0 done (or dry run), 1 refused or error, 3 a step failed. Never shows a value."""
    from nsc_reconcile.loader import load_desired_state
    from nsc_reconcile.rotate import RotationError, plan_rotations, run_rotations

    def show(line: str) -> None:
        out_console.print(REDACTOR.redact(line), highlight=False, markup=False, soft_wrap=True)

    state = load_desired_state(file, env=env)
    with _target(emulator_url, state.subscription_id) as (clients, where):
        err.print(f"rotating in {file} ({state.environment}) against {where}", highlight=False)
        engine = _engine(state, clients, file, 8)
        try:
            rotations = plan_rotations(engine, keys)
        except RotationError as error:
            raise click.ClickException(str(error)) from None
        for rotation in rotations:
            show(rotation.render())
        if not yes:
            err.print("dry run: nothing was written; run again with --yes to rotate",
                      highlight=False)  # fmt: skip
            return EXIT_OK
        with _apply_lease(clients, state, 0, command="rotate"):
            result = run_rotations(engine, rotations, show)
    if result.ok:
        err.print("rotation complete: run plan to see no change", highlight=False)
        return EXIT_OK
    return EXIT_STEP_FAILED


@cli.command()
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path), metavar="PLANFILE")
@format_option
@click.option("--verbose", is_flag=True,
              help="Every field of Kubernetes objects (default: one line per object).")  # fmt: skip
@click.option("--show-unchanged", is_flag=True,
              help="List unchanged resources too (default: only how many).")  # fmt: skip
def show(plan_file: Path, fmt: str, verbose: bool, show_unchanged: bool) -> int:
    """Render a saved plan (`plan FILE --out PLANFILE`, any file name) as `plan` shows it.
    Reads the file only: no network. Exit 0, 1 when PLANFILE is not a saved plan."""
    if not plan_file.is_file():
        raise click.UsageError(f"{plan_file}: no such file")
    saved = _load_plan(plan_file)
    if saved is None:
        raise click.UsageError(
            f"{plan_file} is not a saved plan (make one with `plan FILE --out {plan_file}`)"
        )
    err.print(f"saved plan of {saved.state_file} ({saved.environment}, subscription "
              f"{saved.subscription_id}, digest {saved.state_digest})",
              highlight=False)  # fmt: skip
    shown = saved.render(fmt, verbose=verbose, show_unchanged=show_unchanged)
    out_console.print(_coloured(shown, fmt), highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


@cli.command()
@click.option("--overlay", is_flag=True,
              help="The schema of an environment overlay (envs/ENV.yaml): every field "
              "optional, items of named lists matched by name.")  # fmt: skip
def schema(overlay: bool) -> None:
    """Print the JSON Schema of the desired state, or of an overlay (for editors: VS Code's
    YAML extension, see README)."""
    from nsc_reconcile.schema import desired_state_schema, overlay_schema

    chosen = overlay_schema() if overlay else desired_state_schema()
    sys.stdout.write(json.dumps(chosen, indent=2) + "\n")


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="ARM port on 127.0.0.1 (0: any free port).")  # fmt: skip
@click.option("--world", type=click.Choice(["baseline", "empty"]), default="baseline",
              show_default=True, help="Starting world: seed §2 baseline, or empty.")  # fmt: skip
def emulator(port: int, world: str) -> None:
    """Run the local Azure emulator in the foreground; prints one JSON line when ready."""
    from nsc_reconcile.emulator.app import serve

    serve(port, world)


def _fail(message: str) -> NoReturn:
    """Print one error line (secret values this run handled redacted) and exit 1."""
    from rich.markup import escape

    err.print(f"[bold red]error[/]: {escape(REDACTOR.redact(message))}", highlight=False)
    raise SystemExit(EXIT_ERROR)


def _interrupted(after_newline: bool = False) -> NoReturn:
    """Ctrl-C outside apply's writes: one line, exit 130 (first ending the line the terminal
    echoed ^C on, unless click already did)."""
    err.print("interrupted" if after_newline else "\ninterrupted", highlight=False)
    raise SystemExit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> None:
    """Entry point. Exit codes: 0 ok, 1 error (bad input, failed call), 2 changes present
    (plan --detailed-exitcode), 3 a verification check failed (verify), 130 interrupted
    (Ctrl-C)."""
    with INTERRUPTS.installed():
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from nsc_reconcile import cli_conventions as conventions

    # --debug and --verbose are read before click parses, so that parse errors honour them
    args = conventions.hoist_global_flags(sys.argv[1:] if argv is None else list(argv))
    debug = conventions.given("--debug", args)
    _configure_logging(debug)
    conventions.configure_http_logging(conventions.given("--verbose", args))
    conventions.register_secret_environment(REDACTOR.add)
    _reset_events()
    try:
        result = cli.main(args=args, prog_name="nsc-reconcile", standalone_mode=False)
    except DesiredStateError as exc:
        err.print(REDACTOR.redact(str(exc)), highlight=False, markup=False)
        raise SystemExit(EXIT_ERROR) from None
    except click.exceptions.Abort as exc:  # click turns Ctrl-C into Abort
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click ended the line
            _interrupted(after_newline=True)
        if isinstance(exc.__context__, KeyboardInterrupt):  # at a prompt
            _interrupted()
        _fail("aborted")
    except click.ClickException as exc:
        _fail(exc.format_message())
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if debug:  # the traceback too goes through the redactor: it may quote a value
            import traceback

            sys.stderr.write(REDACTOR.redact("".join(traceback.format_exception(exc))))
            raise SystemExit(EXIT_ERROR) from None
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for a traceback)")
    raise SystemExit(result if isinstance(result, int) else EXIT_OK)
