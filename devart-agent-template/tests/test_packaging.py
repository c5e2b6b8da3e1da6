"""`pip install` of the template's pyproject.toml gives the SDK as `devart_agent`, schema included."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from devart_harness import TEMPLATE


@pytest.mark.skipif(
    importlib.util.find_spec("pip") is None or importlib.util.find_spec("setuptools") is None,
    reason="pip and setuptools are needed (apt-get install python3-pip python3-setuptools)",
)
def test_pip_installs_the_sdk_as_devart_agent(tmp_path: Path):
    source = tmp_path / "src"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "tests"))
    # System site packages: pika and setuptools come from Debian, as there is no package index here.
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=False)
    python = tmp_path / "venv/bin/python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index", "--no-deps",
         "--no-build-isolation", str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    probe = (
        "import devart_agent;"
        "from devart_agent import AgentSDK, NonRetryableError, Result;"
        "from devart_agent.contract import task_message_schema;"
        "print(task_message_schema()['$defs']['TaskMessage']['title'], devart_agent.__file__)"
    )
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    title, location = out.stdout.split()
    assert title == "devart.task.v1"
    assert location.startswith(str(tmp_path / "venv"))
