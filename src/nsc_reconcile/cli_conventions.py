"""The conventions every command follows (what Terraform and az CLI users expect).

`--version`; a bare `nsc-reconcile` prints its help (exit 0); `--debug` and `--verbose`
anywhere on the line; `--subscription` on each command that talks to Azure, with its
precedence; `--emulator=URL` (a URL only with `=`, or a token that looks like one); `--env` any
overlay present in `envs/`; the exit codes at the end of every command's help; shell
completion through click. cli.py uses these; nothing here talks to Azure.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from nsc_reconcile.model.state import DesiredState

PROG = "nsc-reconcile"
BUNDLED = "<bundled>"  # --emulator without a URL: the bundled in-process emulator
GLOBAL_FLAGS = ("--debug", "--verbose")
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
_SUBSCRIPTION_KEY = "nsc_reconcile.subscription"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Values of these variables are credentials: redacted from every message and log line.
SECRET_ENVIRONMENT = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
    "IDENTITY_HEADER",
    "MSI_SECRET",
)

# Exit codes per command (shown at the end of its help); other commands: DEFAULT_EXIT_CODES.
DEFAULT_EXIT_CODES = [("0", "done"), ("1", "error (including a usage error)")]
EXIT_CODES: dict[str, list[tuple[str, str]]] = {
    "validate": [("0", "valid"), ("1", "problems found (all listed), or a usage error")],
    "plan": [
        ("0", "no changes (also with changes, without --detailed-exitcode)"),
        ("2", "changes present (with --detailed-exitcode)"),
        ("1", "error, a blocked resource, or a usage error"),
    ],
    "apply": [
        ("0", "applied, or nothing to do"),
        ("1", "a resource failed, the plan was refused or cancelled, an error or a usage error"),
    ],
    "verify": [
        ("0", "every check passed (SKIP allowed)"),
        ("3", "a check failed (or, with --require-gate, the gate stayed CLOSED)"),
        ("1", "error, or a usage error"),
    ],
    "docs": [("0", "printed, updated or current"), ("1", "stale sections (--check) or error")],
    "scan-docs": [("0", "no new finding"), ("1", "new findings, or an error")],
    "rotate": [
        ("0", "rotated (or a dry run)"),
        ("3", "a step failed (the run stopped there)"),
        ("1", "refused, or an error"),
    ],
    "schema": [("0", "printed"), ("1", "error")],
    "show": [("0", "rendered"), ("1", "not a readable saved plan, or an error")],
    "emulator": [("0", "stopped"), ("1", "error (e.g. the port is taken)")],
}
INTERRUPTED = ("130", "interrupted (Ctrl-C)")
GROUP_EXIT_CODES = [
    ("0", "ok / no changes"),
    ("1", "error (also usage errors)"),
    ("2", "changes present (plan --detailed-exitcode)"),
    ("3", "a verification check or a rotation step failed (verify, rotate)"),
    INTERRUPTED,
]


# --------------------------------------------------------------------------- version
def version_line() -> str:
    """``nsc-reconcile 0.1.0 (Python 3.11.2; azure-core 1.41.0, azure-identity 1.27.0)``."""
    return (
        f"{PROG} {_version(PROG)} (Python {platform.python_version()}; "
        f"azure-core {_version('azure-core')}, azure-identity {_version('azure-identity')})"
    )


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_line())
        ctx.exit(0)


version_option = click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version (and Python's, azure-core's, azure-identity's) and exit.",
)


# --------------------------------------------------------------------------- argv
def hoist_global_flags(args: list[str]) -> list[str]:
    """``--debug``/``--verbose`` written before the command move after it, so that the
    command sees them (``nsc-reconcile --verbose plan F`` is ``plan F --verbose``)."""
    before: list[str] = []
    for index, arg in enumerate(args):
        if arg in GLOBAL_FLAGS:
            before.append(arg)
            continue
        if arg.startswith("-"):
            return args  # another group option (--help, --version): leave the line alone
        return [arg, *before, *args[index + 1 :]]  # everything before it was a global flag
    return args


def given(flag: str, args: list[str]) -> bool:
    """Whether ``flag`` is on the command line (before a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    return flag in args[:end]


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_PORT = re.compile(r"^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:]+\]):\d+(/.*)?$")


def normalize_emulator(args: list[str]) -> list[str]:
    """``--emulator`` takes its URL with ``=`` (``--emulator=http://127.0.0.1:8080``). Written
    with a space, the next word is its URL only when it looks like one (a scheme, or a
    host:port that lacks it: then it is refused with "missing http://"); otherwise
    ``--emulator`` stands alone (the bundled emulator) and the next word keeps its role (FILE)."""
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return out + args[index:]
        if arg == "--emulator":
            following = args[index + 1] if index + 1 < len(args) else ""
            if _URL.match(following) or _HOST_PORT.match(following):
                out.append(f"--emulator={following}")
                index += 2
                continue
            out.append(f"--emulator={BUNDLED}")
        else:
            out.append(arg)
        index += 1
    return out


def emulator_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an emulator's ARM URL (None when it can be)."""
    if "://" not in url:
        return f"--emulator={url}: missing http:// (write --emulator=http://{url})"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        return f"--emulator={url}: the URL must start with http:// or https://"
    return None


# --------------------------------------------------------------------------- subscription
def _remember_subscription(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    if not _GUID.match(value):
        raise click.BadParameter(f"{value!r} is not a subscription id (a GUID)")
    ctx.meta[_SUBSCRIPTION_KEY] = value


def requested_subscription() -> str | None:
    """The ``--subscription`` of the running command (None when not given)."""
    ctx = click.get_current_context(silent=True)
    value = None if ctx is None else ctx.meta.get(_SUBSCRIPTION_KEY)
    return str(value) if value else None


def resolve_subscription(
    flag: str | None, declared: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str, str | None]:
    """The subscription to use, where it came from, and a note when a lower source was
    overridden. Precedence: ``--subscription`` > the desired state's ``subscription_id`` >
    ``AZURE_SUBSCRIPTION_ID``: the flag is this run's explicit choice; the file pins its
    environment to a subscription, which an ambient variable (set for another project in the
    same shell) must not silently change. Raises click.UsageError when there is none."""
    environ = os.environ if environ is None else environ
    from_env = environ.get(SUBSCRIPTION_ENV) or None
    if flag:
        note = None
        if declared and declared.lower() != flag.lower():
            note = f"--subscription {flag} overrides subscription_id {declared} of the file"
        return flag, "from --subscription", note
    if declared:
        note = None
        if from_env and from_env.lower() != declared.lower():
            note = (
                f"{SUBSCRIPTION_ENV} ({from_env}) is ignored: the file names subscription "
                f"{declared} (--subscription overrides it)"
            )
        return declared, "from the file's subscription_id", note
    if from_env:
        if not _GUID.match(from_env):
            raise click.UsageError(f"{SUBSCRIPTION_ENV}={from_env!r} is not a subscription id")
        return from_env, f"from {SUBSCRIPTION_ENV}", None
    raise click.UsageError(
        "no subscription: pass --subscription, set subscription_id in the file, or set "
        f"{SUBSCRIPTION_ENV} (or use --emulator)"
    )


def check_emulator_subscription(served: str) -> None:
    """An emulator serves one subscription: a different ``--subscription`` is a mistake."""
    flag = requested_subscription()
    if flag and flag.lower() != served.lower():
        raise click.UsageError(
            f"--subscription {flag}: the emulator serves subscription {served} only"
        )


# --------------------------------------------------------------------------- --target
def check_targets(state: DesiredState, targets: tuple[str, ...] | list[str]) -> None:
    """Refuse an undeclared --target before connecting, naming the closest address."""
    if not targets:
        return
    from nsc_reconcile.engine import unknown_target
    from nsc_reconcile.graph import build_graph

    graph, _ = build_graph(state)
    for address in targets:
        if address not in graph.nodes:
            raise click.UsageError(unknown_target(address, graph.nodes))


# --------------------------------------------------------------------------- --env
def complete_environments(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ``--env``: the overlays next to the command's FILE."""
    from nsc_reconcile.loader import available_environments

    # While "--env" still lacks its value, click leaves FILE unparsed in ctx.args.
    given = [ctx.params.get(k) for k in ("file", "source", "state_file")] + list(ctx.args)
    base = next((Path(str(g)) for g in given if g and Path(str(g)).is_file()), None)
    base = base or Path("desired_state.yaml")
    return [CompletionItem(e) for e in available_environments(base) if e.startswith(incomplete)]


env_option = click.option(
    "--env",
    default=None,
    metavar="ENV",
    shell_complete=complete_environments,
    help="Merge envs/ENV.yaml (next to FILE) over FILE: any overlay present there.",
)


# --------------------------------------------------------------------------- logging
HTTP_LOGGER = "azure"


def configure_http_logging(verbose: bool) -> None:
    """--verbose: the Azure SDK's HTTP log on stderr (else the root logger's level applies).
    azure-core's HttpLoggingPolicy (in every client's pipeline, after authentication) logs at
    INFO each request's method, URL
    and headers and each response's status and headers, with every header outside its
    allow-list, Authorization included, replaced by "REDACTED" and query parameters other
    than api-version too; it never logs bodies. azure-identity says at INFO which credential
    gave a token. We do not set the clients' ``logging_enable``: its NetworkTraceLoggingPolicy
    logs headers unredacted (the bearer token) and whole bodies (Key Vault values, listKeys
    answers) at DEBUG (azure-core 1.41, policies/_universal.py)."""
    logging.getLogger(HTTP_LOGGER).setLevel(logging.INFO if verbose else logging.NOTSET)


# --------------------------------------------------------------------------- click classes
def _debug_option() -> click.Option:
    return click.Option(
        ["--debug"],
        is_flag=True,
        expose_value=False,
        help="Show tracebacks of unexpected errors, and log everything (SDK traffic included) "
        "on stderr; secret values redacted. Anywhere on the line.",
    )


VERBOSE_HTTP = (
    "Logs each Azure SDK HTTP request and response on stderr (method, URL, status, headers; "
    "Authorization and other credentials REDACTED by azure-core; no bodies). Anywhere on the "
    "line."
)


def _verbose_option() -> click.Option:
    return click.Option(["--verbose"], is_flag=True, expose_value=False, help=VERBOSE_HTTP)


def _subscription_option() -> click.Option:
    return click.Option(
        ["--subscription"],
        metavar="ID",
        default=None,
        expose_value=False,
        callback=_remember_subscription,
        help=f"Azure subscription. Wins over the file's subscription_id, which wins over "
        f"{SUBSCRIPTION_ENV}.",
    )


class NscCommand(click.Command):
    """A command with the shared options (--debug, --verbose; --subscription where it
    talks to Azure), ``--emulator`` normalised, and its exit codes in its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {opt for param in self.params for opt in getattr(param, "opts", [])}
        if "--debug" not in names:
            self.params.append(_debug_option())
        if "--verbose" not in names:
            self.params.append(_verbose_option())
        elif "--emulator" in names:  # the command's own --verbose: the HTTP log comes too
            for param in self.params:
                if isinstance(param, click.Option) and "--verbose" in param.opts:
                    param.help = f"{param.help or ''} {VERBOSE_HTTP}".strip()
        if "--emulator" in names and "--subscription" not in names:
            self.params.append(_subscription_option())

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, normalize_emulator(args))

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        codes = EXIT_CODES.get(self.name or "", DEFAULT_EXIT_CODES)
        with formatter.section("Exit codes"):
            formatter.write_dl([*codes, INTERRUPTED])


class NscGroup(click.Group):
    """The command group: bare invocation prints the help and exits 0 (as `terraform` and
    `az` do); every command is an NscCommand."""

    command_class = NscCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {opt for param in self.params for opt in getattr(param, "opts", [])}
        if "--verbose" not in names:
            self.params.append(_verbose_option())

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        with formatter.section("Exit codes"):
            formatter.write_dl(GROUP_EXIT_CODES)
        with formatter.section("Shell completion (bash; zsh_source, fish_source likewise)"):
            formatter.write_text(
                f'eval "$(_NSC_RECONCILE_COMPLETE=bash_source {PROG})"   # in ~/.bashrc'
            )


def register_secret_environment(add: Callable[[str | None], None]) -> None:
    """Hand the values of credential variables (AZURE_CLIENT_SECRET...) to the redactor."""
    for name in SECRET_ENVIRONMENT:
        add(os.environ.get(name))
