"""The tutorial's modules (seed article, "PyTorch手把手带你拆解MobileNet里的Depthwise Separable
Convolution"), with its constructor arguments and attribute names, so that the
`state_dict()` of its PyTorch classes loads into these unchanged.

    DepthwiseSeparableConv(in_channels, out_channels, kernel_size, stride=1, padding=0)
        depthwise  Conv2d(C_in, C_in, k, stride, padding, groups=C_in)   (with bias)
        pointwise  Conv2d(C_in, C_out, 1)                                (with bias)
    MobileNetBlock(in_ch, out_ch, stride=1)
        dw_conv    Sequential(Conv2d 3x3 depthwise, no bias; BatchNorm2d; ReLU6)
        pw_conv    Sequential(Conv2d 1x1, no bias; BatchNorm2d; ReLU6)
    InvertedResidual(in_ch, out_ch, stride, expand_ratio=6)   (Sandler et al. 2018, Fig. 3b)
        conv       Sequential([1x1 expand conv, BN, ReLU6,] 3x3 depthwise conv, BN, ReLU6,
                              1x1 project conv, BN) -- convs with bias, as the tutorial writes them
        x + conv(x) when stride == 1 and in_ch == out_ch
    HybridBlock(in_ch, out_ch)
        downsample Conv2d(in_ch, out_ch, 3, stride=2, padding=1)
        mid        DepthwiseSeparableConv(out_ch, out_ch, 3, padding=1)
        upsample   ConvTranspose2d(out_ch, out_ch, 3, stride=2, padding=1)
    TinyMobileNet(num_classes=10)
        features   Sequential(Conv2d 3->32 s2 no bias, BN, ReLU6, five MobileNetBlocks
                              32->64->128(s2)->128->256(s2)->256, AdaptiveAvgPool2d(1))
        classifier Linear(256, num_classes)

Every module takes a keyword `rng` (seed or numpy Generator) for its initialisation, and
writes its `backward` under its `forward`: the same data flow in reverse.
"""

from __future__ import annotations

from .. import memory
from ..functional import layers as ops
from ..functional.layer_backward import flatten_backward
from ..geometry import int_pair
from ..nn import init
from ..nn.activation import ReLU6
from ..nn.conv import Conv2d, ConvTranspose2d
from ..nn.linear import Linear
from ..nn.module import Module, Sequential
from . import _checks
from .residual import ResidualBranch
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d


class DepthwiseSeparableConv(Module):
    """Depthwise k x k convolution (one filter per input channel) then a pointwise 1 x 1
    convolution (Howard et al. 2017, Sec. 3.1), both with bias.

    Input (N, in_channels, H, W); output (N, out_channels, OH, OW) with the depthwise
    step's stride and padding. Parameters: C_in*k*k + C_in + C_out*C_in + C_out.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, rng=None):
        super().__init__()
        in_channels = _checks.integer(in_channels, "in_channels", "DepthwiseSeparableConv")
        out_channels = _checks.integer(out_channels, "out_channels", "DepthwiseSeparableConv")
        int_pair(kernel_size, "kernel_size", "DepthwiseSeparableConv")  # stride, padding: Conv2d checks them
        memory.check_model(DepthwiseSeparableConv, in_channels=in_channels, out_channels=out_channels,
                           kernel_size=kernel_size, stride=stride, padding=padding)
        rng = init.generator(rng)
        self.depthwise = Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                groups=in_channels, rng=rng)
        self.pointwise = Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0, rng=rng)

    def forward(self, x):
        x = self.depthwise(x)
        x = self.pointwise(x)
        return x

    def backward(self, grad):
        grad = self.pointwise.backward(grad)
        grad = self.depthwise.backward(grad)
        return grad


class MobileNetBlock(Module):
    """MobileNetV1's block (Howard et al. 2017, Fig. 3 right): 3x3 depthwise conv -> BN ->
    ReLU6, then 1x1 pointwise conv -> BN -> ReLU6; convolutions without bias (BN's shift
    plays that role). Input (N, in_ch, H, W); output (N, out_ch, ceil(H/stride), ceil(W/stride))."""

    def __init__(self, in_ch, out_ch, stride=1, *, rng=None):
        super().__init__()
        in_ch = _checks.integer(in_ch, "in_ch", "MobileNetBlock")
        out_ch = _checks.integer(out_ch, "out_ch", "MobileNetBlock")
        memory.check_model(MobileNetBlock, in_ch=in_ch, out_ch=out_ch, stride=stride)
        rng = init.generator(rng)
        self.dw_conv = Sequential(
            Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False, rng=rng),
            BatchNorm2d(in_ch),
            ReLU6(inplace=True),
        )
        self.pw_conv = Sequential(
            Conv2d(in_ch, out_ch, 1, 1, 0, bias=False, rng=rng),
            BatchNorm2d(out_ch),
            ReLU6(inplace=True),
        )

    def forward(self, x):
        x = self.dw_conv(x)
        x = self.pw_conv(x)
        return x

    def backward(self, grad):
        grad = self.pw_conv.backward(grad)
        grad = self.dw_conv.backward(grad)
        return grad


class InvertedResidual(ResidualBranch):
    """The tutorial's inverted residual block (after Sandler et al. 2018, Sec. 3.3): expand
    1x1 to in_ch*expand_ratio channels (skipped when expand_ratio == 1), 3x3 depthwise with
    `stride`, project 1x1 to out_ch with no activation (a linear bottleneck); the input is
    added back when stride == 1 and in_ch == out_ch. Unlike torchvision's block, its
    convolutions keep their biases, as the tutorial writes them.
    """

    def __init__(self, in_ch, out_ch, stride, expand_ratio=6, *, rng=None):
        super().__init__()
        in_ch = _checks.integer(in_ch, "in_ch", "InvertedResidual")
        out_ch = _checks.integer(out_ch, "out_ch", "InvertedResidual")
        expand_ratio = _checks.integer(expand_ratio, "expand_ratio", "InvertedResidual")
        memory.check_model(InvertedResidual, in_ch=in_ch, out_ch=out_ch, stride=stride, expand_ratio=expand_ratio)
        rng = init.generator(rng)
        hidden_ch = in_ch * expand_ratio
        self.use_residual = stride == 1 and in_ch == out_ch
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2d(in_ch, hidden_ch, 1, rng=rng))
            layers.append(BatchNorm2d(hidden_ch))
            layers.append(ReLU6(inplace=True))
        layers.extend([
            Conv2d(hidden_ch, hidden_ch, 3, stride, 1, groups=hidden_ch, rng=rng),
            BatchNorm2d(hidden_ch),
            ReLU6(inplace=True),
        ])
        layers.extend([
            Conv2d(hidden_ch, out_ch, 1, rng=rng),
            BatchNorm2d(out_ch),
        ])
        self.conv = Sequential(*layers)

    @property
    def shortcut(self) -> bool:
        return self.use_residual


class HybridBlock(Module):
    """The tutorial's mixed block: a standard 3x3 stride-2 convolution to downsample, a
    depthwise separable convolution in the middle, and a 3x3 stride-2 transposed convolution
    to upsample. Output size 2*ceil(H/2) - 1 (no output_padding), as the tutorial's."""

    def __init__(self, in_ch, out_ch, *, rng=None):
        super().__init__()
        in_ch = _checks.integer(in_ch, "in_ch", "HybridBlock")
        out_ch = _checks.integer(out_ch, "out_ch", "HybridBlock")
        memory.check_model(HybridBlock, in_ch=in_ch, out_ch=out_ch)
        rng = init.generator(rng)
        self.downsample = Conv2d(in_ch, out_ch, 3, stride=2, padding=1, rng=rng)
        self.mid = DepthwiseSeparableConv(out_ch, out_ch, 3, padding=1, rng=rng)
        self.upsample = ConvTranspose2d(out_ch, out_ch, 3, stride=2, padding=1, rng=rng)

    def forward(self, x):
        x = self.downsample(x)
        x = self.mid(x)
        return self.upsample(x)

    def backward(self, grad):
        grad = self.upsample.backward(grad)
        grad = self.mid.backward(grad)
        return self.downsample.backward(grad)


class TinyMobileNet(Module):
    """The tutorial's small MobileNet: a 3x3 stride-2 stem, five MobileNetBlocks, global
    average pooling and a linear classifier. Input (N, 3, H, W); output (N, num_classes).
    The tutorial says "about 0.5M parameters"; count them with `sum(p.size for p in
    model.parameters())`."""

    def __init__(self, num_classes=10, *, rng=None):
        super().__init__()
        num_classes = _checks.integer(num_classes, "num_classes", "TinyMobileNet")
        memory.check_model(TinyMobileNet, num_classes=num_classes)
        rng = init.generator(rng)
        self.features = Sequential(
            Conv2d(3, 32, 3, 2, 1, bias=False, rng=rng),
            BatchNorm2d(32),
            ReLU6(inplace=True),
            MobileNetBlock(32, 64, 1, rng=rng),
            MobileNetBlock(64, 128, 2, rng=rng),
            MobileNetBlock(128, 128, 1, rng=rng),
            MobileNetBlock(128, 256, 2, rng=rng),
            MobileNetBlock(256, 256, 1, rng=rng),
            AdaptiveAvgPool2d(1),
        )
        self.classifier = Linear(256, num_classes, rng=rng)

    def forward(self, x):
        x = self.features(x)
        self.save_for_backward(x.shape)
        x = ops.flatten(x, 1)  # the tutorial's x.view(x.size(0), -1)
        return self.classifier(x)

    def backward(self, grad):
        (features_shape,) = self.saved_for_backward()
        grad = self.classifier.backward(grad)
        grad = None if grad is None else flatten_backward(grad, features_shape)
        return self.features.backward(grad)
