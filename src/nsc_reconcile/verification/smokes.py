"""The smoke tests of seed §5 phase 4 (``verify --smoke``): which exist, in which order, and
running a chosen set so that one failing smoke never stops the others. Each smoke is a
function of the verification ``Run`` returning its checks (PASS/FAIL/SKIP with evidence).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nsc_reconcile.verification.context import Run
from nsc_reconcile.verification.results import Check, Status

SMOKE_NAMES = ("dns", "postgres", "openai", "langfuse", "alerts", "network")


def _smokes() -> dict[str, Callable[[Run], list[Check]]]:
    from nsc_reconcile.verification.dns import smoke_dns
    from nsc_reconcile.verification.smoke import smoke_alerts
    from nsc_reconcile.verification.smoke_langfuse import smoke_langfuse
    from nsc_reconcile.verification.smoke_network import smoke_network
    from nsc_reconcile.verification.smoke_openai import smoke_openai
    from nsc_reconcile.verification.smoke_postgres import smoke_postgres

    return {
        "dns": smoke_dns,
        "postgres": smoke_postgres,
        "openai": smoke_openai,
        "langfuse": smoke_langfuse,
        "alerts": smoke_alerts,
        "network": smoke_network,
    }


def parse_smokes(text: str | None) -> tuple[str, ...]:
    """``"dns,postgres"`` -> the names in SMOKE_NAMES order; ``""``/``"all"`` -> all of them.
    Raises ValueError naming an unknown smoke and the known ones."""
    if text is None or text.strip() in ("", "all"):
        return SMOKE_NAMES
    asked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in asked if name not in SMOKE_NAMES]
    if unknown:
        raise ValueError(
            f"unknown smoke {', '.join(unknown)}; expected some of: {', '.join(SMOKE_NAMES)}"
        )
    return tuple(name for name in SMOKE_NAMES if name in asked)


def run_smokes(run: Run, names: Sequence[str]) -> list[Check]:
    """The checks of the smokes ``names``; a smoke that raises becomes one FAIL saying why.
    From ``aks``/``databricks`` the connectivity smokes run together inside the network
    (smoke_from.py); ``alerts`` and ``network`` always run here."""
    from nsc_reconcile.retry import describe_error
    from nsc_reconcile.verification.smoke_from import CONNECTIVITY, smoke_from

    table = _smokes()
    checks: list[Check] = []
    inside = [n for n in names if n in CONNECTIVITY] if run.origin != "runner" else []
    for name in names:
        if name in inside:
            if name == inside[0]:
                try:
                    checks += smoke_from(run, inside)
                except Exception as error:
                    checks.append(Check(f"smoke-{name}/from-{run.origin}", f"Smoke from "
                                        f"{run.origin}", Status.FAIL, "",
                                        f"could not check: {describe_error(error)}"))  # fmt: skip
            continue
        try:
            checks += table[name](run)
        except Exception as error:
            checks.append(Check(f"smoke-{name}", f"Smoke: {name}", Status.FAIL, "",
                                f"could not check: {describe_error(error)}"))  # fmt: skip
    return checks
