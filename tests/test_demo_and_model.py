"""The main job on embedded defaults, with the real local model from its installed package."""

import ast
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from adapters.cli import app
from digests.embeddings import LocalEmbedder
from digests.models import MINILM_SHA256, packaged_minilm_path, verify_sha256

ROOT = Path(__file__).resolve().parents[1]


def test_packaged_model_is_the_pinned_one():
    verify_sha256(packaged_minilm_path() / "model.safetensors", MINILM_SHA256)
    with pytest.raises(RuntimeError, match="refusing to load"):
        verify_sha256(packaged_minilm_path() / "config.json", MINILM_SHA256)


def test_local_model_puts_the_same_problem_close():
    embedder = LocalEmbedder()
    vectors = embedder.embed(
        [
            "refunds over $50 need a supervisor's approval and it takes days",
            "waiting three days for a sup to approve a small refund",
            "the android app crashes at checkout",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.5 > vectors[0] @ vectors[2]


def test_demo_prints_a_digest_and_writes_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "frictionlog weekly digest" in result.stdout
    html = (tmp_path / "digest.html").read_text()
    markdown = (tmp_path / "digest.md").read_text()
    assert html.startswith("<!doctype html>") and "Top themes this week" in html
    # The chart: inside the page, and beside the Markdown, which points at it.
    assert '<img id="chart" src="data:image/png;base64,' in html and 'alt="Line chart of submissions' in html
    assert "](digest-chart.png)" in markdown
    assert (tmp_path / "digest-chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "digest-chart.png" in result.output
    top = [line for line in markdown.splitlines() if line.startswith("### T-")]
    assert len(top) >= 5
    assert "Resolved this week" in markdown and "**T-" in markdown.split("## Resolved this week")[1]
    assert "not acknowledged" in markdown  # the overdue owner in the sample storyline
    assert "@example.com" not in markdown + html  # customer emails in the sample data were redacted
    # The deadline chase ran through the demo's week: the owner who never acknowledged was
    # reminded, and a day later the lead heard, through the outbox to the console.
    chased = result.stdout.split("Deadlines that chase themselves")[1]
    assert "· reminder: T-" in chased and "· escalation: T-" in chased
    assert "[to priya] Reminder: please acknowledge T-" in chased
    assert "[to demo-lead] Escalation: T-" in chased and "its owner, priya, has not acknowledged it" in chased


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["bot", "digests", "storage"])
def test_core_never_imports_a_platform_or_model_sdk(package):
    forbidden = {"slack_bolt", "slack_sdk", "botbuilder", "openai"}
    for path in (ROOT / package).rglob("*.py"):
        assert not (_imports(path) & forbidden), f"{path} imports {_imports(path) & forbidden}"


@pytest.mark.parametrize("package", ["digests", "storage"])
def test_dependencies_point_inward(package):
    for path in (ROOT / package).rglob("*.py"):
        assert not (_imports(path) & {"bot", "adapters"}), f"{path} reaches outward"


def test_every_query_lives_in_storage():
    """Building queries (select, update, insert, delete, text) or running them happens in storage/."""
    builders = {"select", "update", "insert", "delete", "text", "func"}
    for package in ("bot", "digests", "adapters"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and node.module.split(".")[0] in {"sqlmodel", "sqlalchemy"}
                ):
                    used = {alias.name for alias in node.names} & builders
                    assert not used, f"{path} imports {used} from {node.module}"
                if isinstance(node, ast.Attribute) and node.attr in {"exec", "execute"}:
                    pytest.fail(f"{path}:{node.lineno} runs a query outside storage/")
