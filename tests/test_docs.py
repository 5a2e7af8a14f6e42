"""The generated docs are current: docs/configuration.md is what scripts/gen_config_doc.py writes
from codesign/config.py today, and every config field has a description."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_doc", ROOT / "scripts" / "gen_config_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_config_field_is_described():
    assert _generator().problems() == []


def test_configuration_doc_is_current():
    gen = _generator()
    expected = gen.render()
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == expected, ("docs/configuration.md is stale: run "
                                 "`.venv/bin/python scripts/gen_config_doc.py` and commit the result")


def test_check_mode_exit_codes(tmp_path, monkeypatch):
    gen = _generator()
    monkeypatch.setattr(gen, "OUTPUT", tmp_path / "configuration.md")
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1  # missing
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    (tmp_path / "configuration.md").write_text("stale\n")
    assert gen.main(["--check"]) == 1
