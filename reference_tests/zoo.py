"""The pytorchcv models the graph path is tested on, built small enough for CI.

pytorchcv is pure Python; its models are imported from `pytorchcv.models.<module>` because its
`model_provider` imports torchvision, whose PyPI wheel does not load beside the CPU torch here.
Their classifiers end in an AvgPool2d sized for 224×224 (7×7; 13×13 in SqueezeNet): at a
smaller input, `at_size` resizes that final pool to the feature map it receives, so every op
of the network still runs."""

from __future__ import annotations

import importlib

import numpy as np

ZOO = {
    "mobilenet_w1": "mobilenet",
    "mobilenetv2_w1": "mobilenetv2",
    "mobilenetv3_small_w1": "mobilenetv3",
    "mobilenetv3_large_w1": "mobilenetv3",
    "shufflenetv2_w1": "shufflenetv2",
    "shufflenet_g1_w1": "shufflenet",
    "mnasnet_a1": "mnasnet",
    "efficientnet_b0": "efficientnet",
    "squeezenet_v1_1": "squeezenet",
    "resnet18": "resnet",
    "ghostnet": "ghostnet",
    "igcv3_w1": "igcv3",
    "proxylessnas_mobile": "proxylessnas",
    "fbnet_cb": "fbnet",
    "mixnet_s": "mixnet",
    "peleenet": "peleenet",
    "menet108_8x1_g3": "menet",
}


# The smallest input side (a multiple of 8) each model accepts where it is not 16: SqueezeNet's
# unpadded max-pools need >= 17 (an empty map below), PeleeNet's stem concatenates maps that
# differ below 31.
SMALLEST = {"squeezenet_v1_1": 24, "peleenet": 32}


def small_size(name: str, size: int = 16) -> int:
    """The input side to run `name` at when `size` would do: `size`, or the model's smallest."""
    return max(size, SMALLEST.get(name, 0))


def pytorchcv_model(name: str, size: int = 224, seed: int = 0):
    """pytorchcv's `name` with seeded weights and non-trivial BatchNorm statistics
    (npconv.twins.seed_batchnorm), its final pool fitted to a `size`×`size` input, in eval mode."""
    import torch

    from npconv.twins import seed_batchnorm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(importlib.import_module(f"pytorchcv.models.{ZOO[name]}"), name)()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    if size != 224:
        _fit_final_pools(model, x)
    seed_batchnorm(model, seed + 1, x)
    return model.eval()


def _fit_final_pools(model, x) -> None:
    """Resize each whole-map AvgPool2d (kernel >= 7) to the feature map it receives on x."""
    import torch

    from npconv.nn.hooks import hooked

    def fit(name, module, args):
        if isinstance(module, torch.nn.AvgPool2d) and np.max(module.kernel_size) >= 7:
            module.kernel_size = tuple(args[0].shape[-2:])

    with hooked(model, pre=fit), torch.no_grad():
        model.eval()(x)
