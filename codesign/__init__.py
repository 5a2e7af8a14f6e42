"""fpga-codesign: hardware-in-the-loop co-design of quantized neural networks for FPGAs.

`search`, `resume`, `estimate` and `fit` are the Python API (`codesign.api`); the `codesign` command
is a thin layer over them. Importing the package starts nothing: Ray, torch and the toolchains are
imported when a function needs them."""
from codesign.api import SearchResult, estimate, fit, resume, search

__all__ = ["SearchResult", "estimate", "fit", "resume", "search"]
