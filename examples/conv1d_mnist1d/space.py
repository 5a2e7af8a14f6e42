"""A 1-D CNN on mnist1d's 40-sample signals (keyword-spotting / radio-signal shaped): one or two
convolution + pooling stages, a hidden dense layer and the classifier; the learning rate is searched too."""
from codesign.net import Conv1d, Dense, Flatten, Input, MaxPool, Network


def build(trial, data):
    bits = trial.suggest_categorical("bits", [2, 3, 4])
    x = Input(data, bits=8)
    for i in range(trial.suggest_int("stages", 1, 2)):
        channels = trial.suggest_categorical(f"conv{i}_channels", [8, 16, 32])
        kernel = trial.suggest_categorical(f"conv{i}_kernel", [3, 5])
        x = Conv1d(channels, kernel, padding=kernel // 2, weight_bits=bits, act_bits=bits)(x)
        x = MaxPool(2)(x)
    x = Flatten()(x)
    x = Dense(trial.suggest_categorical("hidden", [16, 32, 64]), weight_bits=bits, act_bits=bits)(x)
    out = Dense(data.n_classes, weight_bits=bits)(x)
    return Network(out, lr=trial.suggest_float("lr", 1e-3, 3e-2, log=True))
