"""A pipeline of named stages that skips what is up to date and resumes what was interrupted.

Each stage is a config node, built only when the stage runs (so a stage may read what earlier
ones wrote). A stage's key is a content hash of its config chained with the key of the stage
before it; ``<run_dir>/<stage>/stage.json`` records the key, whether the stage finished, how
long it took and its one-line summary. On a rerun a finished stage with the same key is
skipped; an unfinished one with the same key runs again in its directory as it was left (a
stage resumes from its own partial files); a changed or forced one starts from an empty
directory. Whenever a stage runs, the records of the stages after it are dropped.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from corelib import instantiate, to_dict
from examples.reasoning._io import read_json, write_json

__all__ = ["Pipeline", "Stage", "StageContext"]

RECORD = "stage.json"


@attrs.frozen
class StageContext:
    """Where a running stage writes (``directory``) and reads earlier stages' outputs."""

    run_dir: Path
    name: str

    @property
    def directory(self) -> Path:
        """This stage's own directory."""
        return self.run_dir / self.name

    def output(self, stage: str) -> Path:
        """The directory of the earlier stage ``stage``; an error if it has not finished."""
        record = _read_record(self.run_dir / stage)
        if record is None or not record.get("done"):
            raise RuntimeError(
                f"stage {self.name!r} reads the output of stage {stage!r}, which has not "
                f"finished in {self.run_dir}"
            )
        return self.run_dir / stage

    def seconds(self) -> dict[str, dict[str, float]]:
        """Wall-clock and CPU seconds of each finished stage when it last ran, in run order."""
        records = [_read_record(path.parent) for path in self.run_dir.glob(f"*/{RECORD}")]
        done = sorted((r for r in records if r and r.get("done")), key=lambda r: r["order"])
        return {r["name"]: {"wall": r["seconds"], "cpu": r["cpu_seconds"]} for r in done}


class Stage(Protocol):
    """One step of the pipeline; ``run`` returns a one-line summary (or None)."""

    def run(self, context: StageContext) -> str | None: ...


class Pipeline:
    """Run ``stages`` (name -> config node) in order under ``run_dir``.

    Build it with ``_recursive_=False`` so that each stage's node reaches it unbuilt: a stage
    is instantiated just before it runs. ``run(force=[...])`` redoes the named stages.
    """

    def __init__(self, stages: Mapping[str, Any], *, run_dir: str = "runs/reasoning") -> None:
        if not stages:
            raise ValueError("Pipeline: no stages")
        self.stages = dict(stages)
        self.run_dir = Path(run_dir)

    def keys(self) -> dict[str, str]:
        """Each stage's key: the hash of its config chained with the previous stage's key."""
        keys, previous = {}, ""
        for name, node in self.stages.items():
            text = json.dumps(to_dict(node), sort_keys=True, default=repr)
            previous = keys[name] = hashlib.sha256(f"{previous}\0{text}".encode()).hexdigest()
        return keys

    def run(self, force: Sequence[str] = ()) -> None:
        """Run every stage that is not up to date; print one line per stage."""
        unknown = sorted(set(force) - set(self.stages))
        if unknown:
            raise ValueError(
                f"Pipeline: --force {', '.join(unknown)}: no such stage; "
                f"stages are {', '.join(self.stages)}"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        names = list(self.stages)
        for index, (name, key) in enumerate(self.keys().items()):
            context = StageContext(self.run_dir, name)
            record = _read_record(context.directory)
            if name not in force and record and record.get("done") and record.get("key") == key:
                print(
                    f"[{name}] up to date ({record['seconds']:.1f} s when it ran): "
                    f"{record.get('summary') or ''}".rstrip(": ")
                )
                continue
            resuming = name not in force and record is not None and record.get("key") == key
            if not resuming:
                shutil.rmtree(context.directory, ignore_errors=True)
            for later in names[index + 1 :]:
                (self.run_dir / later / RECORD).unlink(missing_ok=True)
            print(f"[{name}] {'resuming' if resuming else 'running'}", flush=True)
            seconds, summary = self._run_stage(context, key, index)
            done = f"[{name}] done in {seconds:.1f} s" + (f": {summary}" if summary else "")
            print(done, flush=True)

    def _run_stage(self, context: StageContext, key: str, index: int) -> tuple[float, str | None]:
        """Build and run one stage, recording it as unfinished, then as done."""
        record: dict[str, Any] = {"name": context.name, "key": key, "order": index, "done": False}
        _write_record(context.directory, record)
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        summary = instantiate(self.stages[context.name]).run(context)
        seconds = time.perf_counter() - start
        record.update(done=True, seconds=seconds, cpu_seconds=_cpu_seconds() - cpu_start)
        _write_record(context.directory, {**record, "summary": summary})
        return seconds, summary

    def __repr__(self) -> str:
        return f"Pipeline(stages={list(self.stages)}, run_dir={str(self.run_dir)!r})"


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _read_record(directory: Path) -> dict[str, Any] | None:
    try:
        record = read_json(directory / RECORD)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(directory: Path, record: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / RECORD, record)
