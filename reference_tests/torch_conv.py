"""The PyTorch side of the conv2d cross-checks: nn.Conv2d built from a drawn configuration."""

import contextlib

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


@contextlib.contextmanager
def torch_own_cpu_kernels():
    """PyTorch's own CPU kernels, not oneDNN's, for the calls inside (the flag restored after).

    Which kernel PyTorch's CPU convolutions take depends on the CPU: where oneDNN supports
    bfloat16 (AVX-512 BW/VL/DQ, `torch.ops.mkldnn._is_mkldnn_bf16_supported()`) or float16
    (`_is_mkldnn_fp16_supported()`), it takes those dtypes, and it accumulates in float32; elsewhere
    PyTorch's own kernels run (`slow_conv_transpose2d/3d` for a transposed convolution, which
    adds the kernel taps in the narrow dtype). A test that pins one kernel's arithmetic runs it
    here, so that it holds on every CPU."""
    saved = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = saved


def onednn_takes(dtype: torch.dtype) -> bool:
    """Whether PyTorch's CPU convolutions in this reduced dtype go to oneDNN on this CPU."""
    check = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}[dtype]
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled and bool(
        getattr(torch.ops.mkldnn, check)())
