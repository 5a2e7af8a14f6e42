import sys
import time

import pytest

from flows.tools import ToolError, ToolTimeout, call_with_timeout, doctor, run_tool


def test_run_tool_logs_and_checks_return_code(tmp_path):
    run_tool([sys.executable, "-c", "print('hello')"], cwd=tmp_path, timeout_s=30, log_file=tmp_path / "ok.log")
    assert "hello" in (tmp_path / "ok.log").read_text()
    with pytest.raises(ToolError, match="exited with 3"):
        run_tool([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], cwd=tmp_path, timeout_s=30,
                 log_file=tmp_path / "bad.log")
    with pytest.raises(ToolTimeout, match="did not finish within 0.5 s"):
        run_tool([sys.executable, "-c", "import time; time.sleep(10)"], cwd=tmp_path, timeout_s=0.5,
                 log_file=tmp_path / "slow.log")
    with pytest.raises(ToolError, match="not found"):
        run_tool(["no-such-tool-xyz"], cwd=tmp_path, timeout_s=5, log_file=tmp_path / "none.log")


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


def _raise():
    raise ValueError("inner failure")


def _crash():
    import os
    os._exit(7)


def test_call_with_timeout_result_error_timeout_crash():
    assert call_with_timeout(_sleep, 0.01, timeout_s=30) == 0.01
    with pytest.raises(ValueError, match="inner failure"):
        call_with_timeout(_raise, timeout_s=30)
    start = time.monotonic()
    with pytest.raises(ToolTimeout):
        call_with_timeout(_sleep, 30, timeout_s=0.5)
    assert time.monotonic() - start < 10
    with pytest.raises(ToolError, match="crashed"):
        call_with_timeout(_crash, timeout_s=30)


def test_doctor_lists_every_tool():
    names = {t.name: t for t in doctor()}
    assert {"finn-plus", "hls4ml", "g++", "vivado", "vitis-hls", "yosys", "nextpnr-ecp5", "nextpnr-nexus"} <= set(names)
    assert names["finn-plus"].available and names["finn-plus"].version
    assert all(t.enables for t in names.values())
