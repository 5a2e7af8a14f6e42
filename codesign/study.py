"""The search's Optuna study in an RDB storage: SQLite `RUN/study.db` by default, any SQLAlchemy URL
from `search.storage`. Optuna's own tools open it: `optuna-dashboard RUN/study.db`, or
`optuna.load_study(storage="sqlite:///RUN/study.db", study_name=...)` (the name is in RUN/study.json).

Ray Tune pickles the searcher, and with it the study's storage, into its checkpoints. The storage
pickles as the configured spec only, never as a resolved path, and reconnects against the run folder
of the search in progress (`active_run`): a moved run folder resumes with its own study.db.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from optuna.storages import RDBStorage

from codesign.config import ConfigError

DEFAULT_DATABASE = "study.db"
STUDY_FILE = "study.json"


def storage_url(spec: str | None, run_dir: str | Path) -> str:
    """The SQLAlchemy URL of a storage spec: None is RUN/study.db; a relative SQLite path is resolved
    against the run folder; any other URL is used as it is."""
    from sqlalchemy.engine import make_url
    run_dir = Path(run_dir).resolve()
    if spec is None:
        return f"sqlite:///{run_dir / DEFAULT_DATABASE}"
    url = make_url(spec)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_absolute():
        return url.set(database=str(run_dir / url.database)).render_as_string(hide_password=False)
    return spec


@dataclass(frozen=True)
class StudyInfo:
    """Which study of which storage a run's searcher uses (written to RUN/study.json)."""

    name: str
    storage: str | None  # as configured: None is RUN/study.db

    @property
    def shown(self) -> str:
        """The storage for people: the run-folder database by its relative name, passwords hidden."""
        if self.storage is None:
            return DEFAULT_DATABASE
        from sqlalchemy.engine import make_url
        return make_url(self.storage).render_as_string(hide_password=True)

    def as_dict(self) -> dict:
        return {**asdict(self), "storage_shown": self.shown}

    def write(self, run_dir: str | Path) -> None:
        from codesign import runfolder
        runfolder.write_text(Path(run_dir), STUDY_FILE, json.dumps(self.as_dict(), indent=1))

    @classmethod
    def read(cls, run_dir: str | Path) -> StudyInfo | None:
        """The run's study, or None for a run folder written before studies were stored."""
        path = Path(run_dir) / STUDY_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(name=data["name"], storage=data["storage"])


_active_runs: list[Path] = []


@contextmanager
def active_run(run_dir: str | Path):
    """Within this block, storages unpickled from Ray's checkpoints open the study of `run_dir`."""
    _active_runs.append(Path(run_dir).resolve())
    try:
        yield
    finally:
        _active_runs.pop()


class RunFolderStorage(RDBStorage):
    """An Optuna RDBStorage that pickles as its spec and reconnects in the active run folder."""

    def __init__(self, spec: str | None, run_dir: str | Path):
        self.spec = spec
        try:
            super().__init__(storage_url(spec, run_dir))
        except Exception as exc:  # noqa: BLE001 - a missing driver or an unreachable server: same advice
            shown = StudyInfo("", spec).shown
            raise ConfigError(f"search.storage: cannot open {shown!r}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None

    def __getstate__(self) -> dict:
        return {"spec": self.spec}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["spec"], current_run_dir())


def check_resumable(run_dir: str | Path) -> None:
    """A run folder's own study database is still there (SQLite would silently start an empty one)."""
    info = StudyInfo.read(run_dir)
    if info is not None and info.storage is None and not (Path(run_dir) / DEFAULT_DATABASE).is_file():
        raise ConfigError(f"cannot resume {str(run_dir)!r}: its Optuna study {DEFAULT_DATABASE} is missing "
                          f"(the finished trials are still in {Path(run_dir) / 'trials.jsonl'})")


def open_new_study_storage(info: StudyInfo, run_dir: str | Path) -> RunFolderStorage:
    """The storage a new search's study is created in; refuses a name already taken in a shared database."""
    import optuna
    storage = RunFolderStorage(info.storage, run_dir)
    if info.name in optuna.get_all_study_names(storage):
        raise ConfigError(f"search.storage {info.shown!r} already holds a study named {info.name!r}")
    return storage


def current_run_dir() -> Path:
    """The run folder of the search in progress in this process."""
    if not _active_runs:
        raise RuntimeError("no search in progress: a study storage is unpickled (Ray restores a searcher) "
                           "only within codesign.study.active_run(RUN)")
    return _active_runs[-1]
