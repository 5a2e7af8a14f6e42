"""The search's Optuna study in an RDB storage in the run folder, Ray Tune's loggers from the config."""
import shutil

import optuna
import pytest
import ray.cloudpickle as cloudpickle

from codesign.config import ConfigError, config_from_mapping
from codesign.runfolder import read_records
from codesign.study import (
    RunFolderStorage, StudyInfo, active_run, check_resumable, open_new_study_storage, storage_url,
)

State = optuna.trial.TrialState


def _space(trial):
    trial.suggest_int("x", 1, 1000)


def _searcher(run_dir, name="s"):
    from codesign.tune import ConstrainedOptunaSearch
    return ConstrainedOptunaSearch(space=_space, metric=["accuracy", "lut"], mode=["max", "min"],
                                   sampler=optuna.samplers.RandomSampler(seed=0), study_name=name,
                                   storage=RunFolderStorage(None, run_dir))


def _ok(acc=0.9):
    return {"final": True, "status": "ok", "objective_values": [acc, 100.0], "constraints/fit_lut": -0.5}


def _study(run_dir, name="s"):
    return optuna.load_study(storage=f"sqlite:///{run_dir}/study.db", study_name=name)


def test_storage_url_resolves_against_the_run_folder(tmp_path):
    assert storage_url(None, tmp_path) == f"sqlite:///{tmp_path}/study.db"
    assert storage_url("sqlite:///other.db", tmp_path) == f"sqlite:///{tmp_path}/other.db"
    assert storage_url("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert storage_url("postgresql://u:pw@host/db", tmp_path) == "postgresql://u:pw@host/db"
    assert StudyInfo("n", "postgresql://u:pw@host/db").shown == "postgresql://u:***@host/db"


@pytest.mark.parametrize("value, message", [("not a url", "not a SQLAlchemy URL"), ("sqlite://", "in-memory")])
def test_bad_storage_is_a_config_error(value, message):
    with pytest.raises(ConfigError, match=f"search.storage: .*{message}"):
        config_from_mapping({"search": {"storage": value}})


def test_a_taken_study_name_in_a_shared_database_is_refused(tmp_path):
    shared = f"sqlite:///{tmp_path}/shared.db"
    optuna.create_study(storage=shared, study_name="run-1")
    with pytest.raises(ConfigError, match="already holds a study named 'run-1'"):
        open_new_study_storage(StudyInfo("run-1", shared), tmp_path)
    open_new_study_storage(StudyInfo("run-2", shared), tmp_path)


def test_restored_searcher_neither_duplicates_nor_leaves_trials_running_and_follows_a_moved_folder(tmp_path):
    """Ray's restore: the searcher as first pickled (tuner.pkl), then its latest checkpoint; the trials
    Ray re-runs that had finished after that checkpoint report again."""
    run = tmp_path / "run"
    run.mkdir()
    with active_run(run):
        s = _searcher(run)
        first = cloudpickle.dumps(s)
        for tid in ("a", "b"):
            s.suggest(tid)
        s.on_trial_complete("a", _ok())
        s.save(str(tmp_path / "searcher.pkl"))
        s.on_trial_complete("b", _ok(0.8))  # finished after the checkpoint
        s.suggest("c")  # asked after the checkpoint, then the driver died
    assert str(run).encode() not in first + (tmp_path / "searcher.pkl").read_bytes()
    moved = tmp_path / "moved"
    shutil.move(run, moved)
    with active_run(moved):
        r = cloudpickle.loads(first)
        r.restore(str(tmp_path / "searcher.pkl"))
        r.on_trial_complete("b", {**_ok(0.8), "replayed": True})  # Ray re-runs b: its record is replayed
        r.suggest("d")
        r.on_trial_complete("d", _ok(0.7))
    assert not run.exists()  # the old location is not recreated
    trials = _study(moved).trials
    assert [(t.state, t.user_attrs["ray_trial_id"]) for t in trials] == [
        (State.COMPLETE, "a"), (State.COMPLETE, "b"), (State.FAIL, "c"), (State.COMPLETE, "d")]
    assert trials[0].values == [0.9, 100.0] and trials[0].constraints == {"fit_lut": -0.5}


def test_resume_without_the_study_database_is_a_clear_error(tmp_path):
    StudyInfo("run", None).write(tmp_path)
    with pytest.raises(ConfigError, match="cannot resume .*study.db is missing"):
        check_resumable(tmp_path)
    (tmp_path / "study.db").touch()
    check_resumable(tmp_path)
    check_resumable(tmp_path / "an-old-run-folder")  # no study.json: its study was in Ray's checkpoint


def test_unpickling_a_storage_outside_a_search_is_a_clear_error(tmp_path):
    data = cloudpickle.dumps(RunFolderStorage(None, tmp_path))
    with pytest.raises(RuntimeError, match="active_run"):
        cloudpickle.loads(data)


def test_a_missing_logger_package_fails_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    from codesign.tune import run_search
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    cfg = config_from_mapping({"search": {"loggers": ["tensorboard", "mlflow"]}, "output_dir": str(tmp_path / "runs")})
    with pytest.raises(ConfigError, match=r"^search.loggers: 'mlflow' needs the mlflow package"):
        run_search(cfg, quiet=True)
    assert not (tmp_path / "runs").exists()


def test_configured_storage_url_and_tensorboard_logger(ray_local, tmp_path):
    from codesign.tune import run_search
    shared = f"sqlite:///{tmp_path}/shared.db"
    cfg = config_from_mapping({
        "name": "t", "training": {"epochs": 1, "patience": 1}, "space": {"hidden_layers": [1], "width": [16, 32]},
        "search": {"num_samples": 2, "max_concurrent": 2, "storage": shared, "loggers": ["tensorboard"]},
        "output_dir": str(tmp_path / "runs")})
    run_dir, summary = run_search(cfg, quiet=True)
    assert summary["study"] == {"name": run_dir.name, "storage": shared, "storage_shown": shared}
    assert not (run_dir / "study.db").exists()
    study = optuna.load_study(storage=shared, study_name=run_dir.name)
    assert [t.state for t in study.trials] == [State.COMPLETE] * 2
    assert {t.user_attrs["ray_trial_id"] for t in study.trials} == {r.trial_id for r in read_records(run_dir)}
    events = list(run_dir.glob("ray/*/events.out.tfevents.*"))
    assert len({e.parent for e in events}) == 2 and all(e.stat().st_size > 0 for e in events)
