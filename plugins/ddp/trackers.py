"""Experiment trackers as callbacks: ``ddp/mlflow`` (MLflow's local file store) and
``ddp/wandb`` (Weights & Biases, offline). Rank 0 logs every step's and validation's metrics,
and the run's parameters flattened (``optimizer.lr``); the run is finished when ``fit()`` ends
or a signal stops it. Each library is an extra, imported only when training starts.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from corelib import ConfigError, Trusted, hookimpl

__all__ = ["MLflowTracker", "WandbTracker", "flatten_params"]

_VALUE_LIMIT = 500
"""The most characters of one parameter's value that is logged (MLflow stores at most 6000)."""


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings and lists as one level: ``{"optimizer": {"lr": 0.1}}`` gives
    ``{"optimizer.lr": "0.1"}``, ``{"layers": [4, 8]}`` gives ``layers.0`` and ``layers.1``."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        elif isinstance(value, list | tuple) and value:
            flat.update(flatten_params({str(i): item for i, item in enumerate(value)}, f"{name}."))
        else:
            flat[name] = str(value)[:_VALUE_LIMIT]
    return flat


def trainer_params(trainer: Any) -> dict[str, Any]:
    """The trainer's settings that describe a run (logged with every tracker's params)."""
    settings = ("batch_size", "max_steps", "max_epochs", "val_every", "grad_accum_steps")
    params: dict[str, Any] = {name: getattr(trainer, name, None) for name in settings}
    params.update(
        grad_clip_norm=trainer.grad_clip_norm,
        precision=trainer.precision,
        seed=trainer.seed,
        strategy=type(trainer.strategy).__name__,
        world_size=trainer.strategy.world_size,
        model=type(getattr(trainer.model, "module", trainer.model)).__name__,  # DDP's inner
    )
    optimizer = trainer.optimizer
    if optimizer is not None:
        params["optimizer"] = {"name": type(optimizer).__name__, **optimizer.defaults}
    return {"trainer": params}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: blocked
        return False


class _Tracker:
    """Rank 0's side of a tracker: start a run at the fit start, log metrics, finish it."""

    name = ""
    extra = ""
    library = ""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        run_name: str | None,
        params: Mapping[str, Any] | None,
    ) -> None:
        if not _installed(self.extra):
            raise ConfigError(
                f"{self.name} needs {self.library}: pip install 'corelib[{self.extra}]'"
            )
        self.directory = Path(directory)
        self.run_name = run_name
        self.params = dict(params or {})
        self._active = False

    @hookimpl
    def ddp_fit_start(self, trainer: Any) -> None:
        self._active = trainer.strategy.is_main
        if self._active:
            self._start(trainer, flatten_params({**trainer_params(trainer), **self.params}))

    @hookimpl
    def ddp_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if self._active:
            self._log(step, metrics)

    @hookimpl
    def ddp_validation_end(self, step: int, metrics: dict[str, float]) -> None:
        if self._active:
            self._log(step, metrics)

    @hookimpl
    def ddp_fit_interrupted(self) -> None:
        if self._active:
            self._active = False
            self._finish(interrupted=True)

    @hookimpl
    def ddp_fit_end(self) -> None:
        if self._active:
            self._active = False
            self._finish(interrupted=False)

    def _start(self, trainer: Any, params: dict[str, str]) -> None:
        raise NotImplementedError

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def _finish(self, *, interrupted: bool) -> None:
        raise NotImplementedError


class MLflowTracker(_Tracker):
    """``ddp/mlflow``: log to MLflow's file store under ``directory`` (no server).

    Args:
        directory: the store's folder (``<directory>/mlruns`` unless ``tracking_uri``).
        experiment: the experiment's name (created when missing).
        run_name: the run's name (None: MLflow picks one).
        params: more parameters to log (nested mappings are flattened), e.g. the config.
        tracking_uri: another store; trusted-only, since MLflow sends its credentials there.

    MLflow 3 refuses its file store unless ``MLFLOW_ALLOW_FILE_STORE=true``; this tracker sets
    it (unless set) when its store is a folder: a ``sqlite:`` store needs SQLAlchemy and
    Alembic, which ``corelib[mlflow]`` (mlflow-skinny) does not bring. A resumed run continues
    the same MLflow run (its id is saved in checkpoints).
    """

    name, extra, library = "ddp/mlflow", "mlflow", "MLflow"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        experiment: str = "corelib",
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tracking_uri: Annotated[str | None, Trusted] = None,
    ) -> None:
        super().__init__(directory, run_name, params)
        self.tracking_uri = tracking_uri or (self.directory.absolute() / "mlruns").as_uri()
        self.experiment = experiment
        self.run_id: str | None = None
        self._client: Any = None

    def state_dict(self) -> dict[str, Any]:
        """The MLflow run's id, so that a resumed run logs into the same run."""
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        run_id = state.get("run_id")
        self.run_id = run_id if isinstance(run_id, str) else None

    def _start(self, trainer: Any, params: dict[str, str]) -> None:
        if self.tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow import MlflowClient
        from mlflow.entities import Param

        client = self._client = MlflowClient(self.tracking_uri)
        if self.run_id is not None and trainer.step > 0:
            client.update_run(self.run_id, status="RUNNING")
            return
        found = client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(self.experiment)
        self.run_id = client.create_run(experiment_id, run_name=self.run_name).info.run_id
        items = [Param(key, value) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 per batch
            client.log_batch(self.run_id, params=items[start : start + 100])

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, step) for key, value in metrics.items() if key != "step"
        ]
        self._client.log_batch(self.run_id, metrics=batch)

    def _finish(self, *, interrupted: bool) -> None:
        self._client.set_terminated(self.run_id, status="KILLED" if interrupted else "FINISHED")
        self._client = None


class WandbTracker(_Tracker):
    """``ddp/wandb``: log to Weights & Biases in offline mode under ``directory`` (never the
    network; ``wandb sync <directory>/wandb/offline-run-*`` uploads a run later).

    Args:
        directory: where ``wandb/offline-run-<time>-<id>/`` is written.
        project: the project's name.
        run_name: the run's name (None: W&B picks one).
        params: more parameters to log as the run's config (flattened), e.g. the config.
    """

    name, extra, library = "ddp/wandb", "wandb", "Weights & Biases"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        project: str = "corelib",
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(directory, run_name, params)
        self.project = project
        self._run: Any = None

    def _start(self, trainer: Any, params: dict[str, str]) -> None:
        import wandb

        self.directory.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            mode="offline",
            dir=os.fspath(self.directory),
            project=self.project,
            name=self.run_name,
            config=params,
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
            reinit="create_new",
        )

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        self._run.log({key: value for key, value in metrics.items() if key != "step"}, step=step)

    def _finish(self, *, interrupted: bool) -> None:
        import wandb

        self._run.finish(exit_code=1 if interrupted else 0)
        self._run = None
        if wandb.run is None:  # no other run of this process is open: write everything out
            wandb.teardown()  # (the service holds records until it stops)
