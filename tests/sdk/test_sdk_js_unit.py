"""The browser SDK's build and unit tests (sdk/js: esbuild + tsc, node's test runner)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SDK_JS = REPO / "sdk" / "js"
pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")


@pytest.fixture(scope="module")
def node_modules():
    if not (SDK_JS / "node_modules" / "esbuild").is_dir() or not (SDK_JS / "node_modules" / "typescript").is_dir():
        done = subprocess.run(["npm", "ci", "--prefix", str(SDK_JS), "--no-audit", "--no-fund", "--loglevel=error"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, "npm ci --prefix sdk/js failed:\n" + done.stdout[-4000:] + done.stderr[-4000:]


def test_build(node_modules):
    done = subprocess.run(["node", str(SDK_JS / "build.mjs")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "clickagg.min.js" in done.stdout and "gzipped" in done.stdout


def test_node_unit_tests(node_modules):
    done = subprocess.run(["node", "--test", "sdk/js/test/"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "# fail 0" in done.stdout
    assert "# skipped 0" in done.stdout, "build tests skipped: " + done.stdout[-2000:]
