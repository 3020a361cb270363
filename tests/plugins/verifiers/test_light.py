"""The plugin module and the pure-Python components import neither torch nor numpy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(60)
def test_light_modules_import_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import plugins.verifiers, plugins.verifiers.voting, plugins.verifiers.evaluation\n"
        "import plugins.verifiers.labels, plugins.verifiers.parsing, plugins.verifiers.prompts\n"
        "heavy = sorted({'torch', 'numpy', 'transformers'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
