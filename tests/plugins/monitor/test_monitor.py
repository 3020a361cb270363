"""plugins/monitor: ``resources.json`` in the run record (wall and CPU seconds, peak memory of
the run and its children, CUDA peaks only where torch already set CUDA up)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import plugins.monitor
from corelib import get_plugin_manager, hookimpl
from corelib.registry import Registry
from corelib.runs import RunRecord, run

REPO = Path(__file__).resolve().parents[3]
MIB = 1 << 20

HUNGRY = """
    import subprocess
    import sys


    def hungry(mib: int) -> int:
        '''Holds ``mib`` MiB, and has a child hold twice as much.'''
        held = bytearray(mib << 20)
        child = f"x = bytearray({2 * mib} << 20); x[::4096] = b'1' * len(x[::4096])"
        subprocess.run([sys.executable, "-c", child], check=True, timeout=60)
        held[::4096] = b"1" * len(held[::4096])
        return len(held) >> 20
"""


@pytest.fixture
def hungry_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: Registry
) -> Path:
    module = f"hungry_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(HUNGRY))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "hungry.py"
    config.write_text(
        f"from corelib import L\nfrom {module} import hungry\nmain = L(hungry)(mib=64)\n"
    )
    manager = get_plugin_manager()
    manager.load_plugins()  # the installed entry point "monitor" (pyproject.toml)
    assert manager.get_plugin("monitor") is plugins.monitor
    return config


def test_resources_json_records_time_and_peak_memory(hungry_config: Path, tmp_path: Path) -> None:
    assert run(hungry_config, run_dir=tmp_path / "out") == 64
    resources = json.loads((tmp_path / "out/resources.json").read_text())
    assert set(resources) == {
        "wall_s",
        "cpu_s",
        "peak_rss_bytes",
        "peak_rss_children_bytes",
        "cuda_peak_bytes",
    }
    assert resources["wall_s"] > 0 and resources["cpu_s"] > 0
    assert resources["peak_rss_bytes"] >= 64 * MIB
    assert resources["peak_rss_children_bytes"] >= 128 * MIB
    assert resources["cuda_peak_bytes"] is None  # CUDA was never initialised here


def test_without_a_record_the_figures_stay_in_memory(hungry_config: Path) -> None:
    seen: list[RunRecord] = []

    class Keep:
        @hookimpl
        def corelib_run_end(self, record: RunRecord) -> None:
            seen.append(record)

    get_plugin_manager().register(Keep(), name="keep")  # registered last: called first
    run(hungry_config, ["main.mib=1"])
    assert seen[0].dir is None
    assert seen[0].files["resources.json"]["peak_rss_bytes"] >= MIB


def test_cuda_peaks_are_read_from_an_initialised_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = types.SimpleNamespace(
        is_initialized=lambda: True,
        device_count=lambda: 2,
        max_memory_allocated=lambda index: (index + 1) * MIB,
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    record = RunRecord(dir=None, argv=(), config_path="c.py", overrides=())
    plugins.monitor.corelib_run_start(record)
    plugins.monitor.corelib_run_end(record, None, None)
    assert record.files["resources.json"]["cuda_peak_bytes"] == {"0": MIB, "1": 2 * MIB}


def test_the_monitor_never_imports_torch(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("from corelib import L\nmain = L(dict)(a=1)\n")
    script = textwrap.dedent(
        f"""
        import sys
        import plugins.monitor
        from corelib import get_plugin_manager, hookimpl
        from corelib.runs import run

        get_plugin_manager().register(plugins.monitor, name="monitor")
        run({str(tmp_path / "plain.py")!r}, run_dir={str(tmp_path / "out")!r})
        print("torch" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "CORELIB_DISABLE_PLUGIN_AUTOLOAD": "1"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert json.loads((tmp_path / "out/resources.json").read_text())["cuda_peak_bytes"] is None
