"""Command-line interface: `python -m nsc_reconcile <command>` and `nsc-reconcile`.

Thin: parses arguments, calls the library, renders results, maps outcomes to exit codes
(0 ok, 1 error). Errors are one clear message, no traceback unless `--debug`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from nsc_reconcile.errors import DesiredStateError

EXIT_OK = 0
EXIT_ERROR = 1

out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True)

file_argument = click.argument(
    "file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE"
)
env_option = click.option(
    "--env",
    type=click.Choice(["dev", "staging", "prod"]),
    default=None,
    help="Merge envs/<ENV>.yaml over FILE.",
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Make an Azure environment match a declared desired state: idempotent, private-only, "
    "provable.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    _ = debug  # read by main() before click runs, so that even parse errors honour it


@cli.command()
@file_argument
@env_option
def validate(file: Path, env: str | None) -> None:
    """Load and check FILE (schema, names, references, policy). No network."""
    from nsc_reconcile.graph import build_graph
    from nsc_reconcile.loader import load_desired_state
    from nsc_reconcile.summary import summarize

    state = load_desired_state(file, env=env)
    graph, _ = build_graph(state)
    out.print(summarize(state, graph), highlight=False, markup=False, soft_wrap=True)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the desired state (for editors)."""
    from nsc_reconcile.schema import desired_state_schema

    sys.stdout.write(json.dumps(desired_state_schema(), indent=2) + "\n")


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
    err.print(f"[bold red]error[/]: {message}", highlight=False)
    raise SystemExit(EXIT_ERROR)


def main(argv: list[str] | None = None) -> None:
    """Entry point. Exit codes: 0 ok, 1 error (bad input, failed call)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="nsc-reconcile", standalone_mode=False)
    except DesiredStateError as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise SystemExit(EXIT_ERROR) from None
    except click.exceptions.Abort:
        _fail("aborted")
    except click.ClickException as exc:
        _fail(exc.format_message())
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for a traceback)")
    raise SystemExit(result if isinstance(result, int) else EXIT_OK)
