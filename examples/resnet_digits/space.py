"""A ResNet-8-like network (MLPerf Tiny's image-classification model, scaled to the 8x8 digits):
a stem convolution, a residual stack at full resolution, an optional downsampling stack whose skip
path is a strided 1x1 convolution, global average pooling and the classifier."""
from codesign.net import Add, Conv2d, Dense, GlobalAvgPool, Input


def build(trial, data):
    width = trial.suggest_categorical("width", [4, 8, 16])
    bits = [trial.suggest_categorical(f"stack{i}_bits", [2, 4]) for i in range(2)]
    x = Input(data, bits=8)
    x = Conv2d(width, 3, padding=1, weight_bits=bits[0], act_bits=bits[0])(x)
    # stack 1: two 3x3 convolutions and an identity skip
    y = Conv2d(width, 3, padding=1, weight_bits=bits[0], act_bits=bits[0])(x)
    y = Conv2d(width, 3, padding=1, weight_bits=bits[0], act_bits=bits[0])(y)
    x = Add(act_bits=bits[0])(x, y)
    if trial.suggest_categorical("downsample_stack", [True, False]):
        # stack 2: twice the channels at half the resolution; the skip is a strided 1x1 convolution
        y = Conv2d(2 * width, 3, stride=2, padding=1, weight_bits=bits[1], act_bits=bits[1])(x)
        y = Conv2d(2 * width, 3, padding=1, weight_bits=bits[1], act_bits=bits[1])(y)
        skip = Conv2d(2 * width, 1, stride=2, weight_bits=bits[1], act_bits=bits[1])(x)
        x = Add(act_bits=bits[1])(skip, y)
    x = GlobalAvgPool()(x)
    return Dense(data.n_classes, weight_bits=trial.suggest_categorical("out_bits", [4, 8]))(x)
