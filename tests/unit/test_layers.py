"""The layers point one way (api/cli -> worker -> services -> store -> domain), checked by
import-linter's contracts in pyproject.toml; this proves the check runs on our tree and fails
on the first import that skips or climbs a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the `jobyard` package under `tree`/src, with its pyproject."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_of_the_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src" / "jobyard", tree / "src" / "jobyard")
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _plant(tree: Path, module: str, line: str) -> None:
    path = tree / "src" / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}  # planted\n")


def test_the_code_keeps_its_layers(tmp_path: Path) -> None:
    checked = _lint_imports(_copy_of_the_tree(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("jobyard.api.native.runs", "from jobyard.store import runs as _store", "through the"),
        ("jobyard.cli.accounts", "import jobyard.store.accounts", "through the"),
        ("jobyard.worker.output", "from jobyard.store import runs as _store", "through the"),
        ("jobyard.services.jobs", "from jobyard.api import render as _up", "Layers"),
        ("jobyard.domain.models", "from jobyard.store import tables as _up", "Layers"),
        ("jobyard.store.jobs", "from jobyard.services import runtime as _up", "Layers"),
        ("jobyard.errors", "from jobyard.domain import statuses as _up", "Shared modules"),
    ],
)
def test_a_planted_wrong_import_is_caught(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    tree = _copy_of_the_tree(tmp_path)
    _plant(tree, module, planted)
    checked = _lint_imports(tree)
    assert checked.returncode != 0
    broken = [line for line in checked.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), checked.stdout
    assert module in checked.stdout
