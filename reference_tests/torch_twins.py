"""The tutorial's PyTorch classes, reconstructed, and a PyTorch MobileNetV1: the twins that
npconv's modules are tested against.

The tutorial's code (seed article, sections 2, 4.2, 4.3 and 5) lost its `=`, quotes and
some operators in text extraction; it is restored here token for token: e.g.
"def __init__(self, in_channels, out_channels, kernel_size, stride1, padding0)" is
`stride=1, padding=0`, "self.use_residual stride 1 and in_ch out_ch" is
`stride == 1 and in_ch == out_ch`, "return x self.conv(x)" is `x + self.conv(x)`,
"x x.view(x.size(0), -1)" is `x = x.view(x.size(0), -1)`. Nothing else is changed.

MobileNetV1 is npconv.models.MobileNetV1's layout (Howard et al. 2017, Table 1, with the
last-but-one depthwise at stride 1) written independently in PyTorch.
"""

import torch
import torch.nn as nn


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


class MobileNetV1(nn.Module):
    """Howard et al. 2017, Table 1: a 3x3 stride-2 stem and 13 MobileNetBlocks, channels
    int(c * width_mult), global average pooling, a linear classifier."""

    def __init__(self, width_mult=1.0, num_classes=1000):
        super().__init__()
        c = lambda n: int(n * width_mult)  # noqa: E731
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers = [nn.Sequential(nn.Conv2d(3, c(32), 3, 2, 1, bias=False), nn.BatchNorm2d(c(32)), nn.ReLU6(inplace=True))]
        in_ch = c(32)
        for out, stride in plan:
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
