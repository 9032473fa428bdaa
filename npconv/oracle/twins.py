"""PyTorch twins of npconv's models, for `npconv verify` and for FlopCounterMode.

    twin = npconv.twins.build("tiny_mobilenet", seed=0)          # a torch.nn.Module, eval mode
    net = npconv.convert.from_torch(twin)                        # npconv, the same weights

What is here, all built from `torch.nn` when a function runs (importing this module does
not import torch):

* The tutorial's classes (seed article, sections 2, 4.2, 4.3 and 5), reconstructed token
  for token. Its code lost `=`, quotes and some operators in text extraction; restoring
  them is the only change: "stride1, padding0" is `stride=1, padding=0`,
  "self.use_residual stride 1 and in_ch out_ch" is `stride == 1 and in_ch == out_ch`,
  "return x self.conv(x)" is `return x + self.conv(x)`, "x x.view(x.size(0), -1)" is
  `x = x.view(x.size(0), -1)`, "inplaceTrue" is `inplace=True`.
      DepthwiseSeparableConv(in_channels, out_channels, kernel_size, stride=1, padding=0)
      MobileNetBlock(in_ch, out_ch, stride=1)
      InvertedResidual(in_ch, out_ch, stride, expand_ratio=6)
      HybridBlock(in_ch, out_ch)
      TinyMobileNet(num_classes=10)
* MobileNetV1(width_mult=1.0, num_classes=1000): Howard et al. 2017, Table 1, written in
  PyTorch with npconv.models.MobileNetV1's module tree, so the state_dict keys agree
  ("features.0.0.weight", "features.1.dw_conv.0.weight", ..., "classifier.bias").
* MobileNetV2(num_classes=1000, width_mult=1.0): torchvision's structure, class names,
  state_dict keys, forward and initialisation (torchvision/models/mobilenetv2.py and
  torchvision/ops/misc.py Conv2dNormActivation; torchvision is not installed beside the
  local torch wheel). Its parameter count at 1.0 is torchvision's published 3,504,872.

Seeding (`build`): weights come from PyTorch's own default initialisation under
`torch.manual_seed(seed)` (inside `torch.random.fork_rng`, so the caller's random state is
left alone). BatchNorm layers then get affine parameters drawn from a seeded generator
(weight in [0.5, 1.5), bias in [-0.25, 0.25)) and running statistics measured on a seeded
calibration batch (one training-mode forward with momentum 1, so running_mean and
running_var are that batch's mean and unbiased variance), then perturbed (mean + U[-0.1,
0.1), var * U[0.5, 2)). So every BatchNorm computes a non-trivial affine map in eval mode,
and activations stay O(1) through the depth of the network: ReLU6 neither kills nor
saturates them all, which keeps the comparison against npconv sensitive.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from .twins_shufflenet import twin_classes as _shufflenet_classes

__all__ = ["build", "classes", "seed_batchnorm"]


@functools.cache
def classes() -> SimpleNamespace:
    """The twin classes (torch imported here, once)."""
    import torch
    import torch.nn as nn

    # ------------------------------------------------------------------ the tutorial

    class DepthwiseSeparableConv(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            super().__init__()
            # 深度卷积每个输入通道对应一个卷积核
            self.depthwise = nn.Conv2d(
                in_channels, in_channels, kernel_size,
                stride=stride, padding=padding,
                groups=in_channels  # 关键参数实现通道分离
            )
            # 逐点卷积1x1卷积组合通道信息
            self.pointwise = nn.Conv2d(
                in_channels, out_channels,
                kernel_size=1, stride=1, padding=0
            )

        def forward(self, x):
            x = self.depthwise(x)
            x = self.pointwise(x)
            return x

    class HybridBlock(nn.Module):
        def __init__(self, in_ch, out_ch):
            super().__init__()
            # 下采样阶段使用标准卷积保持表达能力
            self.downsample = nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1)
            # 中间处理使用深度可分离卷积提高效率
            self.mid = DepthwiseSeparableConv(out_ch, out_ch, 3, padding=1)
            # 上采样阶段再使用标准卷积
            self.upsample = nn.ConvTranspose2d(out_ch, out_ch, 3, stride=2, padding=1)

        def forward(self, x):
            x = self.downsample(x)
            x = self.mid(x)
            return self.upsample(x)

    class InvertedResidual(nn.Module):
        def __init__(self, in_ch, out_ch, stride, expand_ratio=6):
            super().__init__()
            hidden_ch = in_ch * expand_ratio
            self.use_residual = stride == 1 and in_ch == out_ch

            layers = []
            # 扩展阶段
            if expand_ratio != 1:
                layers.append(nn.Conv2d(in_ch, hidden_ch, 1))
                layers.append(nn.BatchNorm2d(hidden_ch))
                layers.append(nn.ReLU6(inplace=True))

            # 深度卷积
            layers.extend([
                nn.Conv2d(hidden_ch, hidden_ch, 3, stride, 1, groups=hidden_ch),
                nn.BatchNorm2d(hidden_ch),
                nn.ReLU6(inplace=True)
            ])

            # 压缩阶段
            layers.extend([
                nn.Conv2d(hidden_ch, out_ch, 1),
                nn.BatchNorm2d(out_ch)
            ])

            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            if self.use_residual:
                return x + self.conv(x)
            return self.conv(x)

    class MobileNetBlock(nn.Module):
        def __init__(self, in_ch, out_ch, stride=1):
            super().__init__()
            # 深度卷积 批归一化 ReLU6
            self.dw_conv = nn.Sequential(
                nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
                nn.BatchNorm2d(in_ch),
                nn.ReLU6(inplace=True)
            )
            # 逐点卷积 批归一化 ReLU6
            self.pw_conv = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU6(inplace=True)
            )

        def forward(self, x):
            x = self.dw_conv(x)
            x = self.pw_conv(x)
            return x

    class TinyMobileNet(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.features = nn.Sequential(
                # 初始标准卷积
                nn.Conv2d(3, 32, 3, 2, 1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU6(inplace=True),
                # 堆叠MobileNet块
                MobileNetBlock(32, 64, 1),
                MobileNetBlock(64, 128, 2),
                MobileNetBlock(128, 128, 1),
                MobileNetBlock(128, 256, 2),
                MobileNetBlock(256, 256, 1),
                # 全局平均池化
                nn.AdaptiveAvgPool2d(1)
            )
            self.classifier = nn.Linear(256, num_classes)

        def forward(self, x):
            x = self.features(x)
            x = x.view(x.size(0), -1)
            return self.classifier(x)

    # ------------------------------------------------------------------ MobileNetV1

    class MobileNetV1(nn.Module):
        """Howard et al. 2017, Table 1 (the second-to-last depthwise at stride 1, as every
        implementation has it), channels int(c * width_mult), ReLU6 as the tutorial's block."""

        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

        def __init__(self, width_mult=1.0, num_classes=1000):
            super().__init__()
            c = lambda n: int(n * width_mult)  # noqa: E731
            in_ch = c(32)
            layers = [nn.Sequential(nn.Conv2d(3, in_ch, 3, 2, 1, bias=False), nn.BatchNorm2d(in_ch),
                                    nn.ReLU6(inplace=True))]
            for out, stride in self.plan:
                layers.append(MobileNetBlock(in_ch, c(out), stride))
                in_ch = c(out)
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(in_ch, num_classes)

        def forward(self, x):
            x = self.features(x)
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            return self.classifier(x)

    # ------------------------------------------------------------------ torchvision's MobileNetV2

    def _make_divisible(v, divisor, min_value=None):
        if min_value is None:
            min_value = divisor
        new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
        # Make sure that round down does not go down by more than 10%.
        if new_v < 0.9 * v:
            new_v += divisor
        return new_v

    class Conv2dNormActivation(nn.Sequential):
        def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                     norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation=1, inplace=True, bias=None):
            if padding is None:
                padding = (kernel_size - 1) // 2 * dilation
            if bias is None:
                bias = norm_layer is None
            layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                                groups=groups, bias=bias)]
            if norm_layer is not None:
                layers.append(norm_layer(out_channels))
            if activation_layer is not None:
                params = {} if inplace is None else {"inplace": inplace}
                layers.append(activation_layer(**params))
            super().__init__(*layers)
            self.out_channels = out_channels

    class TorchvisionInvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio, norm_layer=None):
            super().__init__()
            self.stride = stride
            if stride not in [1, 2]:
                raise ValueError(f"stride should be 1 or 2 instead of {stride}")
            if norm_layer is None:
                norm_layer = nn.BatchNorm2d
            hidden_dim = int(round(inp * expand_ratio))
            self.use_res_connect = self.stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                # pw
                layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                                   activation_layer=nn.ReLU6))
            layers.extend([
                # dw
                Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim,
                                     norm_layer=norm_layer, activation_layer=nn.ReLU6),
                # pw-linear
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                norm_layer(oup),
            ])
            self.conv = nn.Sequential(*layers)
            self.out_channels = oup
            self._is_cn = stride > 1

        def forward(self, x):
            if self.use_res_connect:
                return x + self.conv(x)
            else:
                return self.conv(x)

    # torchvision's class is called InvertedResidual too; the tutorial's already has the name here.
    TorchvisionInvertedResidual.__name__ = TorchvisionInvertedResidual.__qualname__ = "InvertedResidual"

    class MobileNetV2(nn.Module):
        def __init__(self, num_classes=1000, width_mult=1.0, inverted_residual_setting=None, round_nearest=8,
                     block=None, norm_layer=None, dropout=0.2):
            super().__init__()
            if block is None:
                block = TorchvisionInvertedResidual
            if norm_layer is None:
                norm_layer = nn.BatchNorm2d
            input_channel = 32
            last_channel = 1280
            if inverted_residual_setting is None:
                inverted_residual_setting = [
                    # t, c, n, s
                    [1, 16, 1, 1],
                    [6, 24, 2, 2],
                    [6, 32, 3, 2],
                    [6, 64, 4, 2],
                    [6, 96, 3, 1],
                    [6, 160, 3, 2],
                    [6, 320, 1, 1],
                ]
            # building first layer
            input_channel = _make_divisible(input_channel * width_mult, round_nearest)
            self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), round_nearest)
            features = [Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6)]
            # building inverted residual blocks
            for t, c, n, s in inverted_residual_setting:
                output_channel = _make_divisible(c * width_mult, round_nearest)
                for i in range(n):
                    stride = s if i == 0 else 1
                    features.append(block(input_channel, output_channel, stride, expand_ratio=t,
                                          norm_layer=norm_layer))
                    input_channel = output_channel
            # building last several layers
            features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                                 norm_layer=norm_layer, activation_layer=nn.ReLU6))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout),
                nn.Linear(self.last_channel, num_classes),
            )
            # weight initialization
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

        def _forward_impl(self, x):
            x = self.features(x)
            # Cannot use "squeeze" as batch-size can be 1
            x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
            x = torch.flatten(x, 1)
            x = self.classifier(x)
            return x

        def forward(self, x):
            return self._forward_impl(x)

    return SimpleNamespace(
        **_shufflenet_classes(),
        DepthwiseSeparableConv=DepthwiseSeparableConv,
        MobileNetBlock=MobileNetBlock,
        InvertedResidual=InvertedResidual,
        HybridBlock=HybridBlock,
        TinyMobileNet=TinyMobileNet,
        MobileNetV1=MobileNetV1,
        Conv2dNormActivation=Conv2dNormActivation,
        TorchvisionInvertedResidual=TorchvisionInvertedResidual,
        MobileNetV2=MobileNetV2,
        make_divisible=_make_divisible,
    )


def seed_batchnorm(model, seed: int, calibration_input) -> None:
    """Give every BatchNorm2d of `model` seeded affine parameters and running statistics
    measured on `calibration_input`, then perturbed (module docstring). Leaves the model in
    eval mode with every BatchNorm's momentum as it was."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    generator = torch.Generator().manual_seed(seed)
    uniform = lambda n, low, high: low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)  # noqa: E731
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for m in norms:
            if m.affine:
                m.weight.copy_(uniform(m.num_features, 0.5, 1.5))
                m.bias.copy_(uniform(m.num_features, -0.25, 0.25))
            m.momentum = 1.0
            m.reset_running_stats()
        if norms:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # Dropout in training mode draws from the global stream
                model.train()(calibration_input.to(next(model.parameters()).dtype))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            m.running_mean.add_(uniform(m.num_features, -0.1, 0.1).to(m.running_mean.dtype))
            m.running_var.mul_(uniform(m.num_features, 0.5, 2.0).to(m.running_var.dtype))
    model.eval()


def build(kind: str, *args, seed: int = 0, calibration_shape=None, **kwargs):
    """A seeded twin in eval mode: `classes().<kind>(*args, **kwargs)` with PyTorch's
    default initialisation under `torch.manual_seed(seed)`, then `seed_batchnorm` on a
    seeded standard-normal batch of `calibration_shape` (N, C, H, W) (needed when the model
    has BatchNorm layers; batch 2 of the verified input's size is a good choice).

    kind: "DepthwiseSeparableConv", "MobileNetBlock", "InvertedResidual", "HybridBlock",
    "TinyMobileNet", "MobileNetV1" or "MobileNetV2" (torchvision's argument order:
    num_classes first; pass keywords)."""
    import torch

    cls = getattr(classes(), kind)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(*args, **kwargs)
    has_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    if has_norm:
        if calibration_shape is None:
            raise ValueError(f"build({kind!r}): a model with BatchNorm needs calibration_shape")
        generator = torch.Generator().manual_seed(seed + 1)
        calibration = torch.randn(tuple(calibration_shape), generator=generator)
        seed_batchnorm(model, seed + 2, calibration)
    return model.eval()
