"""The one module that imports Ray: the search loop on Ray Tune with our Optuna adapter.

Ray's stock `OptunaSearch` tells Optuna only the objective values; ours also forwards the board-fit
and budget constraints (`trial.set_constraint`), marks failed trials FAIL and trials stopped by ASHA
PRUNED, so neither pollutes the front the sampler learns from.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import optuna
import pyarrow as pa
import pyarrow.fs as pafs

optuna.logging.set_verbosity(optuna.logging.WARNING)

from codesign import runfolder
from codesign.algorithms import ALGORITHMS, CHECKS, TRIAL_GRIDS
from codesign.config import Config, ConfigError, dump_config
from codesign.records import Status, TrialRecord
from codesign.results import summarize
from codesign.samplers import NEEDS_SPACE, make_sampler, tell
from codesign.space import sample_spec
from codesign.study import StudyInfo, active_run, check_resumable, open_new_study_storage

# intermediate (per-epoch) results carry no objective values; Ray's strict check would reject them
os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# save Ray's experiment state at every step: a killed driver then loses no trial it had started
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
# Ray's loggers are chosen by search.loggers (tune_loggers), not added whenever tensorboardX is importable
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.air.integrations.mlflow import MLflowLoggerCallback  # noqa: E402 - imports mlflow only when created
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler  # noqa: E402
from ray.tune.search import ConcurrencyLimiter  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402


class ConstrainedOptunaSearch(OptunaSearch):
    """OptunaSearch that forwards constraints and maps our trial statuses onto Optuna states."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # Optuna's pruners are not used; ASHA (a Ray scheduler) decides early stopping.
        return

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)  # RUN/trials/<id> of the Optuna trial
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        result = result or {}
        ot_trial = self._ot_trials[trial_id]
        if self._finished(ot_trial.number):  # told before the checkpoint this search was restored from
            self._completed_trials.add(trial_id)
            return
        if result.get("status"):
            ot_trial.set_user_attr("status", result["status"])
        tell(self._ot_study, ot_trial, final=bool(result.get("final")),
             failed=error or result.get("status") == "failed", values=result.get("objective_values"),
             constraints=_constraints(result))
        self._completed_trials.add(trial_id)

    def _finished(self, number: int) -> bool:
        return any(t.number == number and t.state.is_finished() for t in self._ot_study.get_trials(deepcopy=False))

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        # asked after the checkpoint was written, then the driver died: no Ray trial will ever finish them
        held = {t.number for t in self._ot_trials.values()}
        for t in self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if t.number not in held:
                self._ot_study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def _constraints(result: dict) -> dict[str, float]:
    """The trial's constraint values; Ray flattens a result ("constraints/fit_lut") before its searcher sees it."""
    flat = {key.split("/", 1)[1]: v for key, v in result.items() if key.startswith("constraints/")}
    return {**result.get("constraints", {}), **flat}


class RecordWriter(tune.Callback):
    """Driver-side: writes each finished trial's record into the run folder as it completes."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("replayed"):  # finished before an interruption: its record is already written
            return
        if result.get("record") is not None:
            record = TrialRecord.from_json(result["record"])
        else:  # stopped by the scheduler before its final result
            record = TrialRecord(trial.trial_id, Status.STOPPED, dict(trial.config),
                                 failure_reason=f"stopped by the scheduler after {result.get('epoch', 0)} epochs",
                                 metrics={"val_accuracy": result.get("val_accuracy")},
                                 trial_dir=runfolder.relative_trial_dir(trial.trial_id))
        runfolder.append_record(self.run_dir, record)

    def on_experiment_end(self, trials, **info):
        # Ray stages its state in the Ray session under the run's start time, where a later resume in
        # the same session (of this run or of a copy of it) would take these files for newer than the
        # run folder's. Everything is in the run folder now: the staging copy goes.
        if trials:
            shutil.rmtree(trials[0].storage.experiment_driver_staging_path, ignore_errors=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        runfolder.append_record(self.run_dir, TrialRecord(
            trial.trial_id, Status.FAILED, dict(trial.config),
            failure_reason=f"trial process error (see {trial.error_file or 'the Ray logs'})",
            process_error=True,  # a crashed worker (e.g. killed for memory): retried on resume
            trial_dir=runfolder.relative_trial_dir(trial.trial_id)))


@ray.remote(num_cpus=1)
def _synthesis_task(cfg_json: str, run_dir: str, record_json: dict) -> dict:
    from codesign.trial import synthesize
    return synthesize(Config.model_validate_json(cfg_json), run_dir, TrialRecord.from_json(record_json)).to_json()


class SynthesisScheduler(tune.Callback):
    """Driver-side, with `synthesis.policy` front / top_k: each finished trial the policy selects is
    synthesised by a Ray task (one CPU) beside the trials still training; results are written back into
    its record as they arrive, all of them before the search ends."""

    def __init__(self, run_dir: Path, cfg: Config):
        self.run_dir, self.cfg = run_dir, cfg
        self._queue = None

    def _q(self):
        from codesign.synthesis import SynthesisQueue
        if self._queue is None:
            cfg_json = self.cfg.model_dump_json()
            self._queue = SynthesisQueue(
                self.run_dir, self.cfg,
                submit=lambda rec: _synthesis_task.remote(cfg_json, str(self.run_dir), rec.to_json()),
                ready=lambda handles: ray.wait(handles, num_returns=len(handles), timeout=0)[0],
                result=lambda handle: TrialRecord.from_json(ray.get(handle)))
            self._queue.requeue()  # queued before an interruption
        return self._queue

    def __getstate__(self):  # pickled with Ray's experiment state: the queue's handles are not
        return {"run_dir": self.run_dir, "cfg": self.cfg, "_queue": None}

    def on_step_begin(self, iteration, trials, **info):
        self._q().collect()

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("record") is not None and not result.get("replayed"):
            self._q().offer(TrialRecord.from_json(result["record"]))

    def on_experiment_end(self, trials, **info):
        self._q().collect(wait=True)


class ProgressPrinter(tune.Callback):
    """One line per finished trial: counts by status, best accuracy, Pareto size, hypervolume, time."""

    def __init__(self, run_dir: Path, cfg: Config):
        # no stream attribute: Ray pickles callbacks with the experiment state (for resume)
        self.run_dir, self.cfg = run_dir, cfg
        self.started = time.time()
        self.done_before = len(runfolder.read_records(run_dir))  # a resumed search's ETA counts its own trials
        self.running: set[str] = set()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        print(progress_line(self.run_dir, self.cfg, time.time() - self.started, len(self.running), self.done_before),
              file=sys.stderr, flush=True)

    on_trial_error = on_trial_complete


def progress_line(run_dir: Path, cfg: Config, elapsed_s: float, running: int, done_before: int = 0) -> str:
    from collections import Counter

    from codesign.results import front_hypervolume, pareto_front
    records = runfolder.read_records(run_dir)
    counts = Counter(r.status.value for r in records)
    front = pareto_front(records, cfg)
    board = cfg.resolve_board()
    hv = front_hypervolume(front, cfg, cfg.clock(board))
    best = max((r.accuracy for r in records if r.status is Status.OK), default=None)
    done, total = len(records), expected_trials(cfg)
    done_now = done - done_before
    eta = elapsed_s / done_now * max(total - done, 0) if done_now > 0 else float("nan")
    return (f"[{done}/{total}] ok {counts['ok']} infeasible {counts['infeasible']} failed {counts['failed']} "
            f"stopped {counts['stopped']} running {running} | best acc "
            f"{'-' if best is None else f'{100 * best:.1f}%'} | Pareto {len(front)} | HV {hv:.4f} | "
            f"{elapsed_s:.0f} s elapsed, ~{eta:.0f} s left")


def _trainable(params: dict, *, cfg_json: str, run_dir: str) -> None:
    from codesign.config import Config
    from codesign.trial import evaluate_candidate

    cfg = Config.model_validate_json(cfg_json)
    trial_id = tune.get_context().get_trial_id()
    records = runfolder.read_records(run_dir)
    finished = runfolder.finished_record(records, trial_id)
    if finished is not None:  # re-run after a resume, but it had finished: never train it twice
        tune.report(_final_result(finished, replayed=True))
        return
    completed = runfolder.completed_result(run_dir, trial_id, params)
    if completed is not None:  # trained and scored, but the driver died before writing its record
        tune.report(_final_result(completed.replace(completed_from=runfolder.RESULT)))
        return
    twin = runfolder.twin_record(records, trial_id, params)
    if twin is not None:  # the sampler asked for a network this run already trained: reuse, never retrain
        record = runfolder.reuse_twin(run_dir, twin, trial_id)
        runfolder.write_result(runfolder.trial_dir(run_dir, trial_id), record)
        tune.report(_final_result(record))
        return

    def on_epoch(epoch: int, loss: float, val_acc: float) -> None:
        tune.report({"epoch": epoch, "loss": loss, "val_accuracy": val_acc, "final": False})

    record = evaluate_candidate(cfg, params, trial_id=trial_id, run_dir=run_dir, on_epoch=on_epoch)
    record = record.replace(node_id=ray.get_runtime_context().get_node_id())  # which Ray node ran it
    runfolder.write_result(runfolder.trial_dir(run_dir, trial_id), record)  # before Ray hears of it
    tune.report(_final_result(record))


def _grid_trainable(params: dict, *, cfg_json: str, run_dir: str) -> None:
    """One trial of a fixed grid (codesign/algorithms.py TRIAL_GRIDS, e.g. one dnas lambda)."""
    from codesign.config import Config

    cfg = Config.model_validate_json(cfg_json)
    trial_id = tune.get_context().get_trial_id()
    finished = runfolder.finished_record(runfolder.read_records(run_dir), trial_id)
    if finished is not None:  # re-run after a resume, but it had finished: never run it twice
        tune.report(_final_result(finished, replayed=True))
        return

    def on_epoch(epoch: int, loss: float, val_acc: float) -> None:
        tune.report({"epoch": epoch, "loss": loss, "val_accuracy": val_acc, "final": False})

    _, run_one = TRIAL_GRIDS[cfg.search.algorithm]
    record = run_one(cfg, params, trial_id=trial_id, run_dir=run_dir, on_epoch=on_epoch)
    record = record.replace(node_id=ray.get_runtime_context().get_node_id())
    runfolder.write_result(runfolder.trial_dir(run_dir, trial_id), record)
    tune.report(_final_result(record))


def expected_trials(cfg: Config) -> int:
    """How many trials the search runs: a grid's size, else search.num_samples."""
    if cfg.search.algorithm in TRIAL_GRIDS:
        grid = TRIAL_GRIDS[cfg.search.algorithm][0](cfg)
        return math.prod(len(v) for v in grid.values())
    return cfg.search.num_samples


def _final_result(record: TrialRecord, replayed: bool = False) -> dict:
    """The trial's last result for Ray: the record as JSON data, and what the searcher reads from it."""
    final = {"final": True, "status": record.status.value, "record": record.to_json(), "replayed": replayed,
             "constraints": dict(record.constraints), "val_accuracy": record.metrics.get("val_accuracy", 0.0)}
    if record.objective_values is not None and record.status is not Status.FAILED:
        final["objective_values"] = list(record.objective_values)
    return final


def _space(trial, *, cfg: Config, n_features: int, image_shape, n_classes: int, input_signed: bool = False):
    if cfg.model is not None:
        from codesign.data import dataset_for
        from codesign.userspace import sample
        sample(cfg, trial, dataset_for(cfg))
    else:
        sample_spec(trial, cfg.space, cfg.folding, n_features=n_features, image_shape=image_shape, n_classes=n_classes,
                    input_signed=input_signed, prune=cfg.training.prune)
    return None  # Ray keeps every value the trial was asked for


def check_space(cfg: Config, data) -> None:
    """The search space can serve the data set (built-in) or builds a network (a user space): before any work."""
    from codesign.data import check_space_fits_data
    from codesign.userspace import SpaceError, check_space as check_user_space, space_values
    if cfg.model is None:
        check_space_fits_data(cfg.space, data)
        return
    try:
        check_user_space(cfg, data)
        if cfg.search.algorithm in NEEDS_SPACE:  # a grid or bo needs every parameter's finite values
            space_values(cfg, data)
    except SpaceError as exc:
        raise ConfigError(str(exc)) from None


def check_feedback_tools(cfg: Config) -> None:
    """The flow that scores every trial must be able to run here, on this board: checked before any work."""
    from flows.registry import FLOWS
    if cfg.feedback in FLOWS:
        found = FLOWS[cfg.feedback].check(cfg.style)
        if not found.available:
            raise ConfigError(f"feedback {cfg.feedback!r}: {found.detail}")
        problem = FLOWS[cfg.feedback].board_problem(cfg.resolve_board())
        if problem:
            raise ConfigError(f"feedback {cfg.feedback!r}: {problem}")


def run_search(cfg: Config, *, address: str | None = None, output_dir: str | None = None,
               quiet: bool = False) -> tuple[Path, dict]:
    """Run the configured search on Ray Tune; returns the run folder and its summary."""
    from codesign.data import dataset_for

    cfg.resolve_board()  # a config built without config_from_mapping: unknown board fails before any work
    runfolder.check_output_dir(output_dir or cfg.output_dir)
    check_feedback_tools(cfg)
    check_loggers(cfg.search.loggers)
    data = dataset_for(cfg)
    check_space(cfg, data)
    if cfg.search.algorithm in CHECKS:
        CHECKS[cfg.search.algorithm](cfg)
    run_dir = runfolder.create_run_dir(output_dir or cfg.output_dir, cfg.name)
    runfolder.write_text(run_dir, "config.yaml", dump_config(cfg))
    if cfg.search.algorithm in ALGORITHMS:  # drives its own trials (codesign/algorithms.py), no Ray Tune loop
        return run_dir, _run_algorithm(cfg, run_dir, quiet)
    if cfg.search.algorithm in TRIAL_GRIDS:  # a fixed grid, each point one Ray trial
        grid = TRIAL_GRIDS[cfg.search.algorithm][0](cfg)
        _init_ray(address, quiet)
        tuner = tune.Tuner(
            _make_trainable(cfg, run_dir), param_space={k: tune.grid_search(v) for k, v in grid.items()},
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=cfg.search.max_concurrent,
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=RAY_EXPERIMENT, storage_path=str(run_dir), storage_filesystem=run_storage(),
                                      callbacks=_callbacks(run_dir, cfg, quiet), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0)))
        with active_run(run_dir):
            return _fit(tuner, cfg, run_dir)
    objectives = cfg.search.objectives
    study = StudyInfo(name=run_dir.name, storage=cfg.search.storage)
    searcher = ConstrainedOptunaSearch(
        space=partial(_space, cfg=cfg, n_features=data.n_features, image_shape=data.image_shape,
                      n_classes=data.n_classes, input_signed=data.signed_input),
        metric=[o.metric for o in objectives], mode=[o.direction for o in objectives],
        sampler=make_sampler(cfg, data.image_shape, data), seed=cfg.seed,
        study_name=study.name, storage=open_new_study_storage(study, run_dir))
    study.write(run_dir)
    scheduler = FIFOScheduler()
    if cfg.search.scheduler == "asha":
        # one result per epoch plus the final one: max_t must let a full-length trial report it
        scheduler = ASHAScheduler(metric="val_accuracy", mode="max", time_attr="training_iteration",
                                  max_t=cfg.training.epochs + 1, grace_period=min(3, cfg.training.epochs),
                                  reduction_factor=3)
    _init_ray(address, quiet)  # before the Tuner, which would otherwise start a local Ray itself
    tuner = tune.Tuner(
        _make_trainable(cfg, run_dir),
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=cfg.search.max_concurrent),
                                    scheduler=scheduler, num_samples=cfg.search.num_samples, reuse_actors=True),
        run_config=tune.RunConfig(name=RAY_EXPERIMENT, storage_path=str(run_dir), storage_filesystem=run_storage(),
                                  callbacks=_callbacks(run_dir, cfg, quiet),
                                  verbose=0, failure_config=tune.FailureConfig(max_failures=0)),
    )
    with active_run(run_dir):
        return _fit(tuner, cfg, run_dir)


RAY_EXPERIMENT = "ray"  # Ray Tune's experiment state lives in RUN/ray
LOGGER_PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow"}


def check_loggers(names) -> None:
    """Every configured Ray Tune logger can be created (before any work starts)."""
    import importlib.util
    for name in names:
        if importlib.util.find_spec(LOGGER_PACKAGES[name]) is None:
            raise ConfigError(f"search.loggers: {name!r} needs the {LOGGER_PACKAGES[name]} package "
                              f"(pip install {LOGGER_PACKAGES[name]}), which is not installed")


class RunFolderMLflowLogger(MLflowLoggerCallback):
    """MLflow runs in the file store RUN/mlruns of the run folder the search runs in (also when moved)."""

    def setup(self, *args, **kwargs):
        from codesign.study import current_run_dir
        self.tracking_uri = (current_run_dir() / "mlruns").as_uri()
        super().setup(*args, **kwargs)


def tune_loggers(names, experiment: str) -> list[tune.Callback]:
    """Ray Tune's own per-trial logging: result.json and progress.csv always (its bookkeeping), then
    TensorBoard event files (RUN/ray/<trial>/events.out.tfevents.*) and MLflow runs when configured."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
    out = [JsonLoggerCallback(), CSVLoggerCallback()]
    if "tensorboard" in names:
        out.append(TBXLoggerCallback())
    if "mlflow" in names:
        out.append(RunFolderMLflowLogger(experiment_name=experiment))
    return out


class _AtomicFile:
    """A binary file that appears under its name only once it is completely written and closed."""

    def __init__(self, path: str):
        self._path = path
        self._tmp = f"{path}.{os.getpid()}.partial"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # as pyarrow's LocalFileSystem does
        self._file = open(self._tmp, "wb")
        self.closed = False

    def write(self, data) -> int:
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        if not self.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._path)
            self.closed = True


class AtomicLocalFileSystemHandler(pafs.FileSystemHandler):
    """The local file system, except that every file is written to a temporary name and renamed when
    complete. Ray copies its experiment state from a staging folder into the run folder at every step;
    with plain copies a driver killed mid-copy leaves a truncated checkpoint that cannot be resumed."""

    def __init__(self):
        self._fs = pafs.LocalFileSystem()

    def __eq__(self, other):
        return isinstance(other, AtomicLocalFileSystemHandler)

    def __ne__(self, other):
        return not self == other

    def __reduce__(self):
        return AtomicLocalFileSystemHandler, ()

    def get_type_name(self):
        return "atomic-local"

    def normalize_path(self, path):
        return self._fs.normalize_path(path)

    def get_file_info(self, paths):
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self._fs.get_file_info(selector)

    def create_dir(self, path, recursive):
        self._fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise OSError("refusing to delete the root directory's contents")

    def delete_file(self, path):
        self._fs.delete_file(path)

    def move(self, src, dest):
        self._fs.move(src, dest)

    def copy_file(self, src, dest):
        with self._fs.open_input_stream(src) as source, self.open_output_stream(dest, None) as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)

    def open_input_stream(self, path):
        return self._fs.open_input_stream(path)

    def open_input_file(self, path):
        return self._fs.open_input_file(path)

    def open_output_stream(self, path, metadata):
        return pa.PythonFile(_AtomicFile(path), mode="w")

    def open_append_stream(self, path, metadata):
        return self._fs.open_append_stream(path)


def run_storage() -> pafs.FileSystem:
    """Where Ray Tune keeps a run's experiment state: the local disk, written atomically."""
    return pafs.PyFileSystem(AtomicLocalFileSystemHandler())


def check_experiment_state(experiment: Path) -> None:
    """Fail clearly on a damaged Ray checkpoint (Ray itself logs the error and starts a new search)."""
    import json
    import ray.cloudpickle as cloudpickle
    for path in sorted(experiment.glob("*.pkl")) + sorted(experiment.glob("experiment_state-*.json")):
        try:
            with path.open("rb") as f:
                json.load(f) if path.suffix == ".json" else cloudpickle.load(f)
        except Exception as exc:  # noqa: BLE001 - any unreadable file means the same thing to the user
            raise ConfigError(f"cannot resume: Ray Tune's checkpoint {str(path)!r} is damaged "
                              f"({type(exc).__name__}: {exc or 'empty or truncated'}); "
                              f"the finished trials are still in {experiment.parent / 'trials.jsonl'}") from exc


def _callbacks(run_dir: Path, cfg: Config, quiet: bool) -> list:
    from codesign.synthesis import deferred
    return ([RecordWriter(run_dir)] + ([SynthesisScheduler(run_dir, cfg)] if deferred(cfg) else [])
            + ([] if quiet else [ProgressPrinter(run_dir, cfg)]) + tune_loggers(cfg.search.loggers, cfg.name))


def _make_trainable(cfg: Config, run_dir: Path):
    trainable = _grid_trainable if cfg.search.algorithm in TRIAL_GRIDS else _trainable
    return tune.with_resources(
        tune.with_parameters(trainable, cfg_json=cfg.model_dump_json(), run_dir=str(run_dir)), {"cpu": 1})


def _init_ray(address: str | None, quiet: bool) -> None:
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,  # trial logs: trials/<id>/trial.log
                 logging_level="ERROR" if quiet else "WARNING", configure_logging=True)


class _HideRayRestoreHint(logging.Filter):
    """Ray ends an interrupted fit with "Resume experiment with: Tuner.restore(...)"; the command to
    use here is `codesign search --resume RUN` (printed by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def _fit(tuner, cfg: Config, run_dir: Path, *, resumed: bool = False):
    """Run the search; summary.json says whether it completed. Ctrl-C (Ray stops gracefully on the
    first, raises KeyboardInterrupt on the second) leaves status `interrupted`; any other exception
    leaves `failed` and propagates."""
    started = time.time()
    hide = _HideRayRestoreHint()
    ray_log = logging.getLogger("ray.tune.tune")
    ray_log.addFilter(hide)
    status = "complete"
    try:
        tuner.fit()
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException:
        with contextlib.suppress(Exception):  # the original error is the one to show
            _summarize(run_dir, cfg, "failed", started, resumed)
        raise
    finally:
        ray_log.removeFilter(hide)
    if status == "complete" and len(runfolder.read_records(run_dir)) < expected_trials(cfg):
        status = "interrupted"  # Ray's own SIGINT handler returns normally with trials left to run
    return run_dir, _summarize(run_dir, cfg, status, started, resumed)


def _run_algorithm(cfg: Config, run_dir: Path, quiet: bool, resumed: bool = False) -> dict:
    """Run (or continue) a search of codesign/algorithms.py in `run_dir`; its summary, as `_fit`'s."""
    started, status = time.time(), "complete"
    with active_run(run_dir):
        try:
            ALGORITHMS[cfg.search.algorithm](cfg, run_dir, quiet=quiet)
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException:
            with contextlib.suppress(Exception):
                _summarize(run_dir, cfg, "failed", started, resumed)
            raise
        return _summarize(run_dir, cfg, status, started, resumed)


def _summarize(run_dir: Path, cfg: Config, status: str, started: float, resumed: bool) -> dict:
    study = StudyInfo.read(run_dir)
    extra = {"status": status, "elapsed_s": time.time() - started, "resumed": resumed,
             "algorithm": cfg.search.algorithm, "study": study.as_dict() if study else None,
             "expected_trials": expected_trials(cfg)}
    if status != "complete":
        extra["resume_command"] = runfolder.resume_command(run_dir)
    return summarize(run_dir, cfg, extra=extra)


def resume_search(run_dir: str | Path, *, address: str | None = None, quiet: bool = False) -> tuple[Path, dict]:
    """Continue an interrupted search from its run folder with Ray Tune's restore: finished trials are
    kept, unfinished and errored ones re-run, the sampler's history comes back from Ray's checkpoint."""
    try:
        run = runfolder.open_run(run_dir)
    except ConfigError as exc:
        raise ConfigError(f"cannot resume: {exc}") from None
    run_dir, cfg = run.path, run.config
    if cfg.search.algorithm in ALGORITHMS:  # its own records are its state
        return run_dir, _run_algorithm(cfg, run_dir, quiet, resumed=True)
    experiment = run_dir / RAY_EXPERIMENT
    if not tune.Tuner.can_restore(str(experiment)):
        raise ConfigError(f"cannot resume {str(run_dir)!r}: no Ray Tune experiment state in {experiment}")
    check_loggers(cfg.search.loggers)
    check_resumable(run_dir)
    with active_run(run_dir):  # the study storage pickled in Ray's checkpoint reconnects to this run folder
        check_experiment_state(experiment)
    recovery = runfolder.recover_records(run_dir)
    for skipped in recovery.skipped:
        print(f"warning: {skipped}; dropped it", file=sys.stderr)
    if recovery.recovered:
        print(f"recovered the records of trial(s) {', '.join(recovery.recovered)} from their folders",
              file=sys.stderr)
    _init_ray(address, quiet)
    with active_run(run_dir):  # the study storage in Ray's checkpoints reconnects to this run folder
        tuner = tune.Tuner.restore(str(experiment), trainable=_make_trainable(cfg, run_dir),
                                   storage_filesystem=run_storage(), resume_unfinished=True, resume_errored=True)
        # Ray restores the callbacks pickled with the experiment, and with them the folder the run
        # started in: a copied or moved run folder would write its records into the original
        tuner._local_tuner.get_run_config().callbacks = _callbacks(run_dir, cfg, quiet)
        return _fit(tuner, cfg, run_dir, resumed=True)
