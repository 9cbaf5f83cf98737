"""The layering of docs/architecture.md, checked on the source: the emulator imports nothing
from the product, rendering and models import no SDK, azure.py never imports the emulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "nsc_reconcile"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(*parts: str) -> list[Path]:
    base = PACKAGE.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.is_dir() else [base]


@pytest.mark.parametrize("path", modules("emulator"), ids=lambda p: p.name)
def test_emulator_imports_nothing_from_the_product(path: Path) -> None:
    product = {
        name for name in imports_of(path)
        if name.startswith("nsc_reconcile") and not name.startswith("nsc_reconcile.emulator")
    }  # fmt: skip
    assert product == set()


NO_SDK = [
    *modules("model"),
    *modules("kinds"),  # the kind registry: the model layer reads it (reconcilers by name only)
    *modules("changes.py"),
    *modules("plans.py"),
    *modules("report.py"),
    *modules("summary.py"),
    *modules("loader.py"),
    *modules("graph.py"),
    *modules("policy.py"),
    *modules("naming.py"),
    *modules("yamlsource.py"),
    *modules("redaction.py"),
    *modules("verify_report.py"),
    *modules("verification", "gate.py"),
    *modules("docscan_plugins.py"),
    *modules("auth_errors.py"),
    *modules("cli_conventions.py"),
    *modules("schema.py"),
    *[path for name in ("facts.py", "files.py", "markdown.py", "markers.py", "render.py",
                        "render_alerts.py", "render_security.py", "words.py")
      for path in modules("documents", name)],
]  # fmt: skip


@pytest.mark.parametrize("path", NO_SDK, ids=lambda p: p.name)
def test_models_and_rendering_import_no_sdk(path: Path) -> None:
    assert {n for n in imports_of(path) if n.startswith(("azure", "kubernetes"))} == set()


def test_client_layer_never_imports_the_emulator() -> None:
    for path in modules("azure.py") + modules("resources") + modules("engine.py"):
        assert not {n for n in imports_of(path) if n.startswith("nsc_reconcile.emulator")}, path
