"""Toolchain flows (QONNX export, FINN, hls4ml, Yosys): not implemented yet; see the project's issues."""
