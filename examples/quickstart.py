"""Convolve, count, and compare with PyTorch: the short tour of npconv."""

import numpy as np
import torch
import torch.nn.functional as F

import npconv

rng = np.random.default_rng(0)
x = rng.standard_normal((1, 32, 56, 56), dtype=np.float32)
dw = rng.standard_normal((32, 1, 3, 3), dtype=np.float32)  # depthwise 3x3
pw = rng.standard_normal((64, 32, 1, 1), dtype=np.float32)  # pointwise 32 -> 64

with npconv.count() as tally:
    y = npconv.depthwise_separable_conv2d(x, dw, pw, padding=1)

# Each torch stage is checked against npconv within the proven float32 error bound.
hidden = F.conv2d(torch.from_numpy(x), torch.from_numpy(dw), padding=1, groups=32)
npconv.assert_close_to_reference(hidden, x, dw, padding=1, groups=32)
out = F.conv2d(hidden, torch.from_numpy(pw))
npconv.assert_close_to_reference(out, hidden, pw)

standard = npconv.formulas.standard_conv_macs(1, 32, 64, 56, 3)
print(f"output {y.shape}; counted MACs {tally.macs:,} (depthwise {tally.by_op['depthwise_conv2d'].macs:,}, "
      f"pointwise {tally.by_op['pointwise_conv2d'].macs:,}), of which padding taps {tally.padding_macs:,}")
print(f"separable / standard = {tally.macs / standard:.4f}; "
      f"1/N + 1/K^2 = {npconv.formulas.separable_to_standard_ratio(64, 3):.4f}")
print("PyTorch agrees with npconv within the float32 error bound")
