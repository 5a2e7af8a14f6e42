"""The built-in search space as two space functions of the `codesign.net` API: `mlp` and `cnn`.

`codesign.space.sample_spec` asks for the `kind` and calls one of them with the config's `space:`
section; the network they return becomes the built-in `ModelSpec` (`model_spec`). They are written
like any user space (`model: PATH.py:FUNCTION`), so a copy of this file is a starting point for your
own; called as a user space (`model: codesign.spaces:mlp`) they search the default `space:` ranges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.config import IntRange, SpaceConfig
from codesign.net import Conv2d, Dense, Flatten, Input, MaxPool, Network, Node


@dataclass(frozen=True)
class DataShape:
    """What a space function reads of a data set, for callers that have only its shape."""

    sample_shape: tuple[int, ...]
    n_classes: int
    signed_input: bool = False


def _int(trial, name: str, choice):
    if isinstance(choice, IntRange):
        if choice.log:
            return trial.suggest_int(name, choice.min, choice.max, log=True)
        return trial.suggest_int(name, choice.min, choice.max, step=choice.step)
    return trial.suggest_categorical(name, list(choice))


class _Bits:
    """Weight and activation bits per layer, or one pair for the whole network (`space.tie_bits`)."""

    def __init__(self, trial, space: SpaceConfig):
        self.trial, self.space = trial, space
        self.tied = None
        if space.tie_bits:
            self.tied = (trial.suggest_categorical("weight_bits", list(space.weight_bits)),
                         trial.suggest_categorical("act_bits", list(space.act_bits)))

    def __call__(self, prefix: str) -> tuple[int, int]:
        if self.tied:
            return self.tied
        return (self.trial.suggest_categorical(f"{prefix}_weight_bits", list(self.space.weight_bits)),
                self.trial.suggest_categorical(f"{prefix}_act_bits", list(self.space.act_bits)))

    def output_weights(self) -> int:
        if self.tied:
            return self.tied[0]
        return self.trial.suggest_categorical("out_weight_bits", list(self.space.weight_bits))


def _dense_stack(trial, x: Node, data, space: SpaceConfig, activation: str, bits: _Bits) -> Network:
    for i in range(_int(trial, "hidden_layers", space.hidden_layers)):
        width = _int(trial, f"fc{i}_width", space.width)
        w, a = bits(f"fc{i}")
        x = Dense(width, weight_bits=w, act_bits=a, activation=activation)(x)
    out = Dense(data.n_classes, weight_bits=bits.output_weights(), act_bits=space.output_bits, bn=False,
                activation=activation)(x)
    return Network(out, scaling=space.scaling)


def feature_bits_name(i: int) -> str:
    """The parameter of input feature i's bits (`space.feature_bits`)."""
    return f"feature_bits_{i}"


def _input(trial, data, space: SpaceConfig) -> Node:
    """The input at `space.input_bits`, or with `space.feature_bits` one searched width per feature."""
    if space.feature_bits is None:
        return Input(data, bits=space.input_bits)
    return Input(data, feature_bits=[trial.suggest_categorical(feature_bits_name(i), list(space.feature_bits))
                                     for i in range(math.prod(data.sample_shape))])


def mlp(trial, data, space: SpaceConfig | None = None) -> Network:
    """Dense layers of searched widths and bits, then the classifier (`space.output_bits`); with
    `space.feature_bits`, each input feature's bits too (0 = dropped)."""
    space = space or SpaceConfig()
    activation = trial.suggest_categorical("activation", list(space.activation))
    bits = _Bits(trial, space)
    return _dense_stack(trial, _input(trial, data, space), data, space, activation, bits)


def cnn(trial, data, space: SpaceConfig | None = None) -> Network:
    """Up to `space.conv.blocks` valid convolutions (each optionally followed by a 2x2 max pool; a block
    whose kernel no longer fits the image ends the stack), then the dense layers of `mlp`."""
    space = space or SpaceConfig()
    activation = trial.suggest_categorical("activation", list(space.activation))
    bits = _Bits(trial, space)
    x = Input(data, bits=space.input_bits)
    for i in range(_int(trial, "conv_blocks", space.conv.blocks)):
        kernel = trial.suggest_categorical(f"conv{i}_kernel", list(space.conv.kernel))
        dim = x.shape[1]
        if kernel > dim:
            break
        channels = _int(trial, f"conv{i}_channels", space.conv.channels)
        pool = trial.suggest_categorical(f"conv{i}_pool", list(space.conv.pool)) if dim - kernel + 1 >= 2 else False
        w, a = bits(f"conv{i}")
        x = Conv2d(channels, kernel, weight_bits=w, act_bits=a, activation=activation)(x)
        if pool:
            x = MaxPool(2)(x)
    return _dense_stack(trial, Flatten()(x), data, space, activation, bits)


# space.kind -> space function of the built-in space; explicit registry
BUILTIN_SPACES = {"mlp": mlp, "cnn": cnn}
