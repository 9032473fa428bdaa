"""Where a counter departs from its own stated intent (`DEPARTURES`), each with a minimal
reproduction: a few lines that run the counter and assert the departure.

A convention is a choice a counter states (bias adds count or not; BatchNorm as 2 or 4 per
element; pooling by input or output elements). A departure is a number the counter's own
rules do not mean to give: an operation counted twice, an operation of a kind it counts
missed because of how it is spelled or subclassed, a formula applied where it does not hold.
`npconv.counters.conventions` models both exactly (the prediction includes the departure,
so predicted == reported) and marks each departure's parts, so the command and the docs
can say which departure moved a counter's number and by how much.

The reproductions are run by reference_tests/test_counters.py.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEPARTURES", "Departure"]


@dataclass(frozen=True)
class Departure:
    key: str
    counter: str
    title: str
    text: str
    source: str
    reproduction: str


_PTFLOPS = "from npconv.counters.installed import import_ptflops  # ptflops with torchvision blocked\n" \
           "get_model_complexity_info = import_ptflops().get_model_complexity_info\n"

DEPARTURES = {d.key: d for d in (
    Departure(
        "ptflops.double_count", "ptflops (pytorch)", "counted twice",
        "With its default count_functional=True, the pytorch backend patches F.relu, F.max_pool2d, "
        "F.avg_pool2d, F.adaptive_avg_pool2d (and F.elu, F.gelu, F.prelu, the 1-d and 3-d pools) while its "
        "module hooks are on. nn.ReLU and the pooling modules call exactly those functions, so each call is "
        "counted by the module hook and again by the patched function. (nn.ReLU6 calls F.hardtanh, which is "
        "not patched: it counts once.)",
        "ptflops/pytorch_engine.py: get_flops_pytorch, patch_functional; pytorch_ops.py: MODULES_MAPPING, "
        "FUNCTIONAL_MAPPING",
        _PTFLOPS + """\
import torch.nn as nn
macs, _ = get_model_complexity_info(nn.ReLU(), (8, 4, 4), as_strings=False,
                                    print_per_layer_stat=False, backend="pytorch")
assert macs == 2 * 8 * 4 * 4    # 128 elements, counted by the hook and by the patched F.relu
"""),
    Departure(
        "ptflops.batch", "ptflops (pytorch)", "per image, except the patched functions",
        "The pytorch backend reports \"mean flops consumption per image\": it divides its module hooks' sum "
        "by the batch size, then adds the patched functions' and tensor ops' sum undivided. With a batch of "
        "N > 1 (an input_constructor), what F.relu, F.silu or the pooling functions count is N times its "
        "per-image share.",
        "ptflops/pytorch_engine.py: get_flops_pytorch (`compute_average_flops_cost()` then "
        "`flops_count += sum(torch_functional_flops)`)",
        _PTFLOPS + """\
import torch, torch.nn as nn
model = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.SiLU())   # SiLU counts through F.silu
x = torch.ones(2, 3, 4, 4)                                         # a batch of 2
macs, _ = get_model_complexity_info(model, (3, 4, 4), input_constructor=lambda _: x,
                                    as_strings=False, print_per_layer_stat=False, backend="pytorch")
assert macs == 3 * 8 * 16 + 2 * 8 * 16   # conv per image (384) + SiLU for the whole batch (256)
"""),
    Departure(
        "ptflops.missed_module", "ptflops (pytorch)", "modules it misses",
        "The pytorch backend counts activations (1 per element of nn.ReLU, ReLU6, ELU, GELU, and of F.silu), "
        "but dispatches on the exact module type: nn.Hardswish, nn.Sigmoid, nn.Hardsigmoid and nn.Hardtanh "
        "(whose subclass ReLU6 it counts), a model's own activation module, and any subclass of nn.Conv2d count "
        "0 (\"is treated as a zero-op\" with verbose=True).",
        "ptflops/pytorch_engine.py: is_supported_instance (`type(module) in MODULES_MAPPING`)",
        _PTFLOPS + """\
import torch.nn as nn
relu6, _ = get_model_complexity_info(nn.ReLU6(), (8, 4, 4), as_strings=False,
                                     print_per_layer_stat=False, backend="pytorch")
hardswish, _ = get_model_complexity_info(nn.Hardswish(), (8, 4, 4), as_strings=False,
                                         print_per_layer_stat=False, backend="pytorch")
assert (relu6, hardswish) == (128, 0)
"""),
    Departure(
        "thop.missed_module", "thop", "modules it misses",
        "thop counts a module only when its exact type has a rule. nn.Hardswish, nn.SiLU, nn.Sigmoid, "
        "nn.Hardsigmoid, a model's own activation module, and a subclass of nn.Conv2d or nn.BatchNorm2d have "
        "none: they count 0 (\"Cannot find rule for ... Treat it as zero Macs\" with report_missing=True), "
        "though thop counts the arithmetic of BatchNorm, pooling and softmax.",
        "thop/profile.py: profile (`m_type in register_hooks`), register_hooks",
        """\
import torch, torch.nn as nn
from thop import profile
class MyConv(nn.Conv2d):               # e.g. a weight-standardised convolution
    pass
x = torch.ones(1, 3, 8, 8)
conv, _ = profile(nn.Conv2d(3, 8, 3, padding=1, bias=False), inputs=(x,), verbose=False)
mine, _ = profile(MyConv(3, 8, 3, padding=1, bias=False), inputs=(x,), verbose=False)
hswish, _ = profile(nn.Hardswish(), inputs=(x,), verbose=False)
assert (conv, mine, hswish) == (8 * 8 * 8 * 3 * 9, 0, 0)
"""),
    Departure(
        "thop.functional", "thop", "functional spelling missed",
        "thop counts nn.AdaptiveAvgPool2d (input + output elements), nn.AvgPool2d, nn.Conv2d and nn.Linear, "
        "but only through module hooks: the same pooling written x.mean((2, 3)) or F.adaptive_avg_pool2d, a "
        "convolution written F.conv2d, a linear layer written F.linear, counts 0.",
        "thop/profile.py: profile (forward hooks on modules only)",
        """\
import torch, torch.nn as nn
from thop import profile
class Head(nn.Module):                   # pools in its own forward
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)
    def forward(self, x):
        return self.fc(x.mean((2, 3)))
x = torch.ones(1, 8, 7, 7)
as_module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
pooled, _ = profile(as_module, inputs=(x,), verbose=False)
functional, _ = profile(Head(), inputs=(x,), verbose=False)
assert (pooled, functional) == (8 * 49 + 8 + 16, 16)   # the mean's 392 + 8 count 0
"""),
    Departure(
        "thop.transposed_per_output", "thop", "transposed convolution per output",
        "thop counts nn.ConvTranspose2d with its convolution rule, output elements × C_in/groups × kernel "
        "elements, as if every output value took a full kernel window. A transposed convolution scatters each "
        "input value through the kernel (N·C_in·H·W·C_out/groups·k² multiply-adds, what npconv's loops, "
        "FlopCounterMode, fvcore and ptflops count); at stride s the output has about s² times as many "
        "elements as the input, and thop counts about s² times the multiply-adds.",
        "thop/profile.py: register_hooks[nn.ConvTranspose2d] = count_convNd; vision/calc_func.py: "
        "calculate_conv2d_flops",
        """\
import torch, torch.nn as nn
from thop import profile
up = nn.ConvTranspose2d(8, 8, 3, stride=2, bias=False)      # 4×4 -> 9×9
macs, _ = profile(up, inputs=(torch.ones(1, 8, 4, 4),), verbose=False)
assert macs == 8 * 9 * 9 * 8 * 9          # 46,656; the scatter executes 8·4·4·8·9 = 9,216
"""),
    Departure(
        "torchinfo.transposed_per_output", "torchinfo", "transposed convolution per output",
        "torchinfo counts a layer whose class name contains \"Conv\" as weight elements × batch × output "
        "positions; for nn.ConvTranspose2d that is output elements × C_in/groups × kernel elements, the "
        "same over-count as thop's (about stride² times the multiply-adds executed).",
        "torchinfo/layer_info.py: LayerInfo.calculate_macs",
        """\
import torch.nn as nn
from torchinfo import summary
up = nn.ConvTranspose2d(8, 8, 3, stride=2, bias=False)      # 4×4 -> 9×9
macs = summary(up, input_size=(1, 8, 4, 4), verbose=0).total_mult_adds
assert macs == 8 * 8 * 9 * 9 * 9          # 46,656; the scatter executes 9,216
"""),
    Departure(
        "fvcore.convolution_mode", "fvcore", "convolutions with string padding missed",
        "fvcore counts convolutions through the traced op aten::_convolution. A convolution with "
        "padding=\"same\" or \"valid\" (and the default padding_mode \"zeros\"; other modes pad first and "
        "convolve with padding 0) traces as aten::_convolution_mode, which has no handle: its multiply-adds "
        "count 0, and fvcore only warns about an unsupported operator.",
        "fvcore/nn/flop_count.py: _DEFAULT_SUPPORTED_OPS",
        """\
import torch, torch.nn as nn
from fvcore.nn import FlopCountAnalysis
x = torch.ones(1, 3, 8, 8)
def flops(conv):
    return FlopCountAnalysis(conv, x).unsupported_ops_warnings(False).total()
assert flops(nn.Conv2d(3, 8, 3, padding=1)) == 8 * 8 * 8 * 3 * 9
assert flops(nn.Conv2d(3, 8, 3, padding="same")) == 0
"""),
    Departure(
        "flop_counter.grouped_weight_gradient", "FlopCounterMode", "grouped weight gradient × groups",
        "FlopCounterMode counts a convolution's weight gradient as conv_flop_count of (input, grad_output) with "
        "channel dimensions transposed: C_in × C_out × kernel × output positions × batch, with no division by "
        "groups. A grouped convolution's weight gradient executes C_in/groups × C_out × ... multiply-adds, so "
        "it is charged `groups` times: C times for a depthwise convolution of C channels. Its forward and "
        "input gradient are right.",
        "torch/utils/flop_counter.py: conv_backward_flop (`conv_flop_count(t(x_shape), t(grad_out_shape), "
        "t(grad_weight_shape), transposed=False)`)",
        """\
import torch, torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode
dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)      # depthwise, 8 channels
with FlopCounterMode(display=False) as counter:
    dw(torch.ones(1, 8, 6, 6)).sum().backward()              # the input needs no gradient
forward = 2 * 8 * 9 * 6 * 6                                   # 2 × the MACs: 5,184
assert counter.get_total_flops() == forward + 8 * forward     # the weight gradient charged 8×
"""),
)}
