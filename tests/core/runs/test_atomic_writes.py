"""Every file of a run record is written atomically: a reader never sees half of one, and no
temporary file is left behind, even when the write fails."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from corelib import ConfigError
from corelib.runs._record import write_atomically


def test_a_reader_always_sees_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_atomically(path, json.dumps({"n": -1}))
    done = threading.Event()
    seen: list[int] = []
    errors: list[Exception] = []

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(json.loads(path.read_text())["n"])
            except ValueError as error:  # half a file
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(300):
            write_atomically(path, json.dumps({"n": n, "padding": "x" * 200_000}))
    finally:
        done.set()
        reader.join(30)
    assert not errors and seen and max(seen) <= 299
    assert os.listdir(tmp_path) == ["status.json"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "result.json").mkdir()  # os.replace cannot put a file in place of a folder
    with pytest.raises(ConfigError, match=r"could not write .*result\.json"):
        write_atomically(tmp_path / "result.json", "{}")
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_symlink_in_place_of_a_file_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    (tmp_path / "record").mkdir()
    (tmp_path / "record/run.json").symlink_to(target)
    write_atomically(tmp_path / "record/run.json", "{}")
    assert target.read_text() == "keep me"
    assert not (tmp_path / "record/run.json").is_symlink()
