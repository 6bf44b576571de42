"""The core is the core: nothing in bot/, digests/ or storage/ imports a platform SDK, a model
provider's SDK or the adapters, and the use cases stay in modules a newcomer can read."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("bot", "digests", "storage")
FORBIDDEN = ("adapters", "slack_bolt", "slack_sdk", "botbuilder", "openai")
USE_CASES = ("submissions", "curation", "owners", "views", "publish", "targets", "service", "dispatch")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (a function-level import counts too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def core_files() -> list[Path]:
    return sorted(p for package in CORE for p in (ROOT / package).rglob("*.py"))


def test_the_walk_sees_every_kind_of_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import openai\nfrom slack_sdk import WebClient\ndef f():\n    from adapters import web\n")
    assert [name for _, name in imported_modules(sample)] == ["openai", "slack_sdk", "adapters"]


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_core_module_imports_a_platform_or_a_provider(path):
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not offending, "\n".join(offending)


def test_use_cases_live_in_small_modules_named_for_them():
    for name in USE_CASES:
        lines = (ROOT / "bot" / f"{name}.py").read_text(encoding="utf-8").count("\n")
        assert lines <= 300, f"bot/{name}.py has {lines} lines: split it along its use cases"
