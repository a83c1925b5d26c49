"""The stages depend only on what flows between them: no module in pipeline/, shards/, training/ or finetune/
imports the CLI layer (`twbert.cli`, `twbert.build`, `twbert.commands`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("twbert.cli", "twbert.build", "twbert.commands")


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from twbert import cli`
                yield node.lineno, f"{node.module}.{alias.name}"


STAGE_FILES = sorted(p for d in ("pipeline", "shards", "training", "finetune") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_stage_never_imports_the_cli_layer(path):
    bad = [f"{path.relative_to(ROOT)}:{line}: imports {name}" for line, name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from twbert.build import Stage\n    from twbert import cli\n")
    names = [n for _, n in _imports(bad)]
    assert "twbert.build" in names and "twbert.cli" in names
