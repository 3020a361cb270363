"""``ddp/mlflow`` and ``ddp/wandb`` with the real libraries, offline: rank 0 logs each step's and
validation's metrics and the flattened parameters, and finishes the run; a missing library
names its extra."""

from __future__ import annotations

import json
import os
import signal
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _dist import run_ranks
from _training import make_data, make_trainer
from test_trainer import _fit

from corelib import ConfigError, InstantiationError, hookimpl, instantiate
from plugins.ddp.strategies.ddp import DDP
from plugins.ddp.trackers import MLflowTracker, WandbTracker, flatten_params

_CONFIG = {"optimizer": {"lr": 0.05, "betas": [0.9, 0.99]}, "name": "blobs"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # so that the undo removes it...
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # ...and the tracker must set it itself


def test_params_are_flattened_with_dotted_keys() -> None:
    assert flatten_params(_CONFIG) == {
        "optimizer.lr": "0.05",
        "optimizer.betas.0": "0.9",
        "optimizer.betas.1": "0.99",
        "name": "blobs",
    }


def _mlflow(tracker: MLflowTracker) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracker.tracking_uri)
    assert tracker.run_id is not None
    return client, client.get_run(tracker.run_id)


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


class _Losses:
    def __init__(self) -> None:
        self.logged: dict[str, list[tuple[int, float]]] = {"train/loss": [], "val/loss": []}

    @hookimpl
    def ddp_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self.logged["train/loss"].append((step, metrics["train/loss"]))

    @hookimpl
    def ddp_validation_end(self, step: int, metrics: dict[str, float]) -> None:
        self.logged["val/loss"].append((step, metrics["val/loss"]))


def test_mlflow_logs_metrics_and_params_to_a_local_store(tmp_path: Path) -> None:
    tracker = MLflowTracker(tmp_path, experiment="blobs", params={"config": _CONFIG})
    losses = _Losses()
    _fit(max_steps=4, val_data=make_data(16), val_every=2, callbacks=(losses, tracker))
    assert tracker.tracking_uri == (tmp_path / "mlruns").as_uri()
    client, run = _mlflow(tracker)
    assert run.info.status == "FINISHED"
    for key, logged in losses.logged.items():
        assert _history(client, run.info.run_id, key) == logged
    assert [step for step, _ in losses.logged["val/loss"]] == [2, 4]
    params = run.data.params
    assert params["config.optimizer.betas.1"] == "0.99"
    assert params["trainer.batch_size"] == "8" and params["trainer.strategy"] == "SingleDevice"
    assert params["trainer.optimizer.name"] == "SGD" and params["trainer.optimizer.lr"] == "0.05"
    assert client.get_experiment(run.info.experiment_id).name == "blobs"


def test_a_resumed_run_logs_into_the_same_mlflow_run(tmp_path: Path) -> None:
    first = MLflowTracker(tmp_path / "logs")
    _fit(max_steps=2, callbacks=(first,), checkpoint_dir=tmp_path / "ckpt")
    second = MLflowTracker(tmp_path / "logs")
    _fit(max_steps=4, callbacks=(second,), checkpoint_dir=tmp_path / "ckpt")
    assert second.run_id == first.run_id
    client, run = _mlflow(second)
    assert [step for step, _ in _history(client, run.info.run_id, "train/loss")] == [1, 2, 3, 4]
    assert run.info.status == "FINISHED"


class _SigtermAt3:
    @hookimpl
    def ddp_step_end(self, step: int) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)


def test_an_interrupted_run_is_finished_as_killed(tmp_path: Path) -> None:
    tracker = MLflowTracker(tmp_path)
    with pytest.raises(SystemExit):
        _fit(max_steps=10, callbacks=(_SigtermAt3(), tracker))
    client, run = _mlflow(tracker)
    assert run.info.status == "KILLED"
    assert [step for step, _ in _history(client, run.info.run_id, "train/loss")] == [1, 2, 3, 4]


def _two_ranks(rank: int, directory: Path) -> str | None:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    tracker = MLflowTracker(directory)
    make_trainer(strategy=DDP(timeout_s=30), callbacks=(tracker,), max_steps=3).fit()
    return tracker.run_id


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_only_rank_0_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this process's reader
    run_id, none = run_ranks(_two_ranks, tmp_path, timeout=100)
    assert none is None
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    [experiment] = [e for e in client.search_experiments() if e.name == "corelib"]
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == run_id
    assert [step for step, _ in _history(client, run_id, "train/loss")] == [1, 2, 3]


def _wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` file (a LevelDB-style log of protobufs after a 7-byte
    header); wandb 0.31 has no Python reader of its own."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, position, chunks = path.read_bytes(), 32768, 7, b""
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        left = block - position % block
        _checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if left < 7 or (length == 0 and kind == 0):  # a block's padding
            position += left
            continue
        chunks += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or a split record's last part
            record = pb.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)  # "train/loss" is stored as a nested key


def test_wandb_writes_an_offline_run_with_metrics_and_config(tmp_path: Path) -> None:
    tracker = WandbTracker(tmp_path, project="blobs", params={"config": _CONFIG})
    losses = _Losses()
    _fit(max_steps=4, val_data=make_data(16), val_every=2, callbacks=(losses, tracker))
    [run_file] = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    history: dict[str, list[tuple[int, float]]] = {"train/loss": [], "val/loss": []}
    config, exit_codes = {}, []
    for record in _wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            values = {_key(item): json.loads(item.value_json) for item in record.history.item}
            for key in history.keys() & values.keys():
                history[key].append((values["_step"], values[key]))
        elif kind == "run":
            config = {_key(i): json.loads(i.value_json) for i in record.run.config.update}
        elif kind == "exit":
            exit_codes.append(record.exit.exit_code)
    assert history == losses.logged  # on disk when fit() returns
    assert config["config.optimizer.lr"] == "0.05"
    assert config["trainer.precision"] == "32"
    assert exit_codes == [0]


@pytest.mark.parametrize(
    ("tracker", "message"),
    [
        (MLflowTracker, "ddp/mlflow needs MLflow: pip install 'corelib[mlflow]'"),
        (WandbTracker, "ddp/wandb needs Weights & Biases: pip install 'corelib[wandb]'"),
    ],
)
def test_a_missing_library_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracker: type, message: str
) -> None:
    monkeypatch.setitem(__import__("sys").modules, tracker.extra, None)
    with pytest.raises(ConfigError) as missing:
        tracker(tmp_path)
    assert str(missing.value) == message


def test_an_untrusted_file_cannot_point_mlflow_at_a_server(tmp_path: Path) -> None:
    node = {"_target_": "ddp/mlflow", "directory": str(tmp_path), "tracking_uri": "http://x:5000"}
    with pytest.raises(InstantiationError, match="trusted-only"):
        instantiate(node, _allow_=[])
    del node["tracking_uri"]
    assert instantiate(node, _allow_=[]).tracking_uri == (tmp_path / "mlruns").as_uri()


def test_an_interrupted_wandb_run_is_finished_with_exit_code_1(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        _fit(max_steps=10, callbacks=(_SigtermAt3(), WandbTracker(tmp_path)))
    [run_file] = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(_wandb_records(run_file))
    exits = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
    steps = [
        json.loads(item.value_json)
        for r in records
        if r.WhichOneof("record_type") == "history"
        for item in r.history.item
        if _key(item) == "_step"
    ]
    assert exits == [1] and steps == [1, 2, 3, 4]
