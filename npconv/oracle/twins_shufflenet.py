"""The PyTorch twin of `npconv.models.shufflenet_v2.ShuffleNetV2Unit`: torchvision's
ShuffleNetV2 `InvertedResidual` and `channel_shuffle` (torchvision/models/shufflenetv2.py),
written out here because torchvision is not installed beside the local torch wheel. Same
class body, same state_dict keys as the npconv unit.

    twin = twin_classes()["ShuffleNetV2Unit"](24, 24, 1)

Importing this module does not import torch; `twin_classes()` does, once.
"""

from __future__ import annotations

import functools

__all__ = ["twin_classes"]


@functools.cache
def twin_classes() -> dict:
    """{"ShuffleNetV2Unit": the torch class} (torch imported here)."""
    import torch
    import torch.nn as nn

    def channel_shuffle(x, groups: int):
        batchsize, num_channels, height, width = x.size()
        channels_per_group = num_channels // groups
        # reshape
        x = x.view(batchsize, groups, channels_per_group, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        # flatten
        x = x.view(batchsize, num_channels, height, width)
        return x

    class ShuffleNetV2Unit(nn.Module):  # torchvision's shufflenetv2.InvertedResidual
        def __init__(self, inp: int, oup: int, stride: int) -> None:
            super().__init__()
            if not (1 <= stride <= 3):
                raise ValueError("illegal stride value")
            self.stride = stride

            branch_features = oup // 2
            if (self.stride == 1) and (inp != branch_features << 1):
                raise ValueError(
                    f"Invalid combination of stride {stride}, inp {inp} and oup {oup} values. If stride == 1 then "
                    "inp should be equal to oup // 2 << 1."
                )

            if self.stride > 1:
                self.branch1 = nn.Sequential(
                    self.depthwise_conv(inp, inp, kernel_size=3, stride=self.stride, padding=1),
                    nn.BatchNorm2d(inp),
                    nn.Conv2d(inp, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                    nn.BatchNorm2d(branch_features),
                    nn.ReLU(inplace=True),
                )
            else:
                self.branch1 = nn.Sequential()

            self.branch2 = nn.Sequential(
                nn.Conv2d(
                    inp if (self.stride > 1) else branch_features,
                    branch_features,
                    kernel_size=1,
                    stride=1,
                    padding=0,
                    bias=False,
                ),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
                self.depthwise_conv(branch_features, branch_features, kernel_size=3, stride=self.stride, padding=1),
                nn.BatchNorm2d(branch_features),
                nn.Conv2d(branch_features, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )

        @staticmethod
        def depthwise_conv(i: int, o: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = False):
            return nn.Conv2d(i, o, kernel_size, stride, padding, bias=bias, groups=i)

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)

            out = channel_shuffle(out, 2)

            return out

    return {"ShuffleNetV2Unit": ShuffleNetV2Unit}
