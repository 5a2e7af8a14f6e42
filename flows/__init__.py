"""Toolchain flows: from a trained network to resource numbers through external tools and libraries.
`tools` detects tools and runs them (subprocesses with timeouts, library flows in a forked child);
`qonnx` exports and verifies the QONNX file, `onnx_design` reads a `Design` back from one; `finn`
asks finn-plus for its estimate, `hls4ml` converts and C-simulates, `synthesis` and `reports` run
and read Vivado / Vitis HLS; `finn_rtl` synthesises finn-plus' RTL layers with Yosys. The `yosys`
source: `quantized_mlp` (the network as plain data, built by the caller), `requant` and `da4ml_rtl`
(exact da4ml Verilog), `yosys_run` and `yosys_stat` (running Yosys, parsing `stat`), `rtl_sim`
(gate-level AIGER simulation), `rtl_check` (the RTL against the network) and `yosys_flow` (all of it
as one ResourceEstimate).
"""
