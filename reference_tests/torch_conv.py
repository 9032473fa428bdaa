"""The PyTorch side of the conv2d cross-checks: nn.Conv2d built from a drawn configuration."""

import numpy as np
import torch

TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                np.dtype(np.float64): torch.float64}


def torch_conv2d(cfg, x, w, b, device="cpu"):
    """nn.Conv2d(cfg) with weight w and bias b applied to x on `device`; returns NumPy."""
    layer = torch.nn.Conv2d(
        cfg.in_channels, cfg.out_channels, cfg.kernel_size, bias=b is not None,
        dtype=TORCH_DTYPES[x.dtype], device=device, **cfg.kwargs(),
    )
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        if b is not None:
            layer.bias.copy_(torch.from_numpy(b))
        return layer(torch.from_numpy(x).to(device)).cpu().numpy()


def torch_raises(cfg, x, w, b) -> Exception | None:
    """The exception nn.Conv2d semantics raise for this call (construction or forward), or None."""
    try:
        layer = torch.nn.Conv2d(
            max(cfg.in_channels, 1), max(cfg.out_channels, 1), cfg.kernel_size, bias=False,
            dtype=TORCH_DTYPES[x.dtype], **cfg.kwargs(),
        )
    except Exception as e:  # noqa: BLE001 - any rejection counts
        return e
    try:
        with torch.no_grad():
            # The module's own checks ran at construction; the call's checks run in forward,
            # where the weight may have any shape (as F.conv2d would see it).
            layer.weight = torch.nn.Parameter(torch.from_numpy(w))
            layer.bias = None if b is None else torch.nn.Parameter(torch.from_numpy(b))
            layer(torch.from_numpy(x))
    except Exception as e:  # noqa: BLE001
        return e
    return None
