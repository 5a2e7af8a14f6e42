"""The jet-tagging MLP of hls4ml's tutorials, 16-64-32-32-5, with a bit-width per layer searched
(and the widths scaled by a searched multiplier)."""
from codesign.net import Dense, Input


def build(trial, data):
    scale = trial.suggest_categorical("width_scale", [0.5, 1.0])
    x = Input(data, bits=trial.suggest_categorical("input_bits", [6, 8]))
    for i, width in enumerate((64, 32, 32)):
        bits = trial.suggest_categorical(f"fc{i}_bits", [2, 3, 4, 6])
        x = Dense(int(width * scale), weight_bits=bits, act_bits=bits)(x)
    return Dense(data.n_classes, weight_bits=trial.suggest_categorical("out_bits", [4, 6, 8]))(x)
