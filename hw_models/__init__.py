"""Analytic and calibrated resource and throughput models of FPGA designs: pure functions, no side effects."""
from hw_models.design import (ALLOWED_BITS, LAYER_KINDS, STYLES, ConvLayer, DenseLayer, Design, DesignError,
                              MaxPoolLayer, design_from_mapping, design_to_mapping)
from hw_models.estimate import LayerEstimate, ResourceEstimate, estimate

__all__ = ["ALLOWED_BITS", "LAYER_KINDS", "STYLES", "ConvLayer", "DenseLayer", "Design", "DesignError",
           "LayerEstimate", "MaxPoolLayer", "ResourceEstimate", "design_from_mapping", "design_to_mapping", "estimate"]
