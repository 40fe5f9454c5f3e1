"""The import graph follows the data flow (import-linter contracts in pyproject.toml).

The first test is the contract itself; the others prove it can fail: a copy of the tree with a
deliberate arrow against the flow, or Django pulled into a compute module, is refused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = (
    "config",
    "infra",
    "accounts",
    "catalog",
    "prototypes",
    "annotator",
    "review",
    "curation",
    "exports",
    "evaluation",
)


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def _copy_tree(tmp_path: Path) -> Path:
    dst = tmp_path / "tree"
    dst.mkdir()
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    for name in PACKAGES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "static", "templates")
            )
    return dst


def test_the_import_contracts_hold_on_the_code_base():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # catalog is the ground floor: it must not read what a later stage produced.
        ("catalog/selectors.py", "from curation.models import CuratedImage  # noqa", "Stages follow the data flow"),
        # annotator comes before review.
        ("annotator/services/__init__.py", "import review.selectors  # noqa", "Stages follow the data flow"),
        # the compute modules stay importable without Django.
        ("review/metrics.py", "import django.db  # noqa", "Compute modules stay free of Django"),
    ],
)
def test_a_backward_or_django_import_breaks_the_build(tmp_path, module, line, contract):
    tree = _copy_tree(tmp_path)
    target = tree / module
    if not target.exists():  # a module that is a plain file in this layout
        target = tree / module.replace("/__init__.py", ".py")
    target.write_text(target.read_text() + "\n" + line + "\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout, result.stdout
