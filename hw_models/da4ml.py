"""Pipeline depth of da4ml's fully parallel RTL (`flows.da4ml_rtl`): what a style hls4ml design at
reuse factor 1 takes from input to output when da4ml builds it, in clock cycles.

da4ml's rule (da4ml 0.6 `trace.pipeline.to_pipeline`): every operation carries a latency in adder
levels (one per adder of any width, `cost_add` with the tracer's default adder_size 1); the
pipeline cuts a stage every `latency_cutoff` levels, so it has ceil(L / cutoff) stages, L the
critical path of the whole network in adder levels (retiming then only evens the stages out). L is
the sum over layers of
* the constant-matrix multiply: a balanced adder tree over a column's non-zero CSD digits,
  ceil(log2(in x digits)) levels, which da4ml's solver may deepen by up to its delay slack
  (`hard_dc`, 2 in `flows.da4ml_rtl.trace_mlp`) to share adders;
* the requantization of a hidden layer (`flows.da4ml_rtl._requant_channel`): FINN-style
  comparators summed one after another (2^A - 2 levels for A-bit codes), or the affine form
  floor((M*s + B) / 2^sh) clamped, whose shift-add chain is as long as M's non-zero digits.
"""
from __future__ import annotations

import math

from hw_models.design import Design
from hw_models.timing import adder_levels

HARD_DC = 2  # da4ml solver's delay slack over the minimal adder depth (flows.da4ml_rtl.trace_mlp)
# levels over ceil(log2(terms)) the rule assumes: the middle of 0..HARD_DC, and the best of the three on
# the 36 calibration networks (stage MAPE at cutoff 5: 2.6%; 0 and 2 give 11% and 12%;
# scripts/bench_da4ml_latency.py)
DC_USED = 1
COMPARATOR_MAX_BITS = 3  # up to 3-bit codes every measured layer had comparator channels (choose_impl's cheaper form)
AFFINE_EXTRA_DIGITS = 2  # affine M: about A + 2 non-zero digits in the measured A >= 4 layers


def cmvm_levels(in_features: int, csd_digits: float | None, weight_bits: int) -> int:
    """Adder levels of one output of a constant-matrix multiply: ceil(log2(terms)) + the solver's slack used."""
    return adder_levels(in_features, csd_digits, weight_bits) + DC_USED


def requant_levels(act_bits: int) -> int:
    """Adder levels of a hidden layer's accumulator -> A-bit code map (0 for a 1-bit sign)."""
    if act_bits <= COMPARATOR_MAX_BITS:
        return 2 ** act_bits - 2  # sum_j [s >= t_j], added one after another
    return act_bits + AFFINE_EXTRA_DIGITS


def covers(design: Design) -> str | None:
    """Why the rule does not apply to `design` (None: it does): da4ml's RTL path covers chains of
    integer dense layers at reuse factor 1."""
    if design.style != "hls4ml":
        return "da4ml pipelines are style hls4ml designs"
    if not design.is_chain or any(getattr(l, "kind", "") != "dense" for l in design.layers):
        return "da4ml's RTL path covers chains of dense layers"
    if any((getattr(l, "reuse_factor", None) or 1) != 1 for l in design.layers):
        return "da4ml's RTL is fully parallel (reuse factor 1)"
    if any(l.weight_bits >= 32 for l in design.layers):
        return "da4ml's RTL path covers integer weights"
    return None


def critical_levels(design: Design) -> int:
    """L: adder levels from the input to the last output (see the module doc)."""
    levels = 0
    last = len(design.layers) - 1
    for i, layer in enumerate(design.layers):
        levels += cmvm_levels(layer.in_features, layer.csd_digits, layer.weight_bits)
        if i < last and layer.act_bits < 32:
            levels += requant_levels(layer.act_bits)
    return levels


def pipeline_stages(design: Design, latency_cutoff: float) -> int:
    """Clock cycles through da4ml's pipeline: ceil(L / cutoff) stages (to_pipeline); one combinational
    stage when cutoff <= 0."""
    if latency_cutoff <= 0:
        return 1
    return max(1, math.ceil(critical_levels(design) / latency_cutoff))


PIPELINES = ("hls", "da4ml")  # hls4ml.rules.pipeline: whose schedule a fully parallel design's latency follows


def latency_rule(design: Design, rules) -> tuple[int | None, str | None]:
    """(pipeline stages, note) when the coefficient set's `pipeline` rule is da4ml and the rule covers
    `design`; (None, why not) when it is da4ml but does not cover it; (None, None) for `hls`."""
    pipeline = rules.get("pipeline", "hls")
    if pipeline not in PIPELINES:
        raise ValueError(f"hls4ml.rules.pipeline: {pipeline!r} unknown; valid: {list(PIPELINES)}")
    if pipeline == "hls" or design.style != "hls4ml":
        return None, None
    why = covers(design)
    if why is not None:
        return None, f"latency: {why}; hls4ml's HLS schedule assumed"
    cutoff = float(rules["da4ml_latency_cutoff"])
    return pipeline_stages(design, cutoff), (f"latency: da4ml pipeline, {critical_levels(design)} adder levels "
                                             f"cut every {cutoff:g}")
