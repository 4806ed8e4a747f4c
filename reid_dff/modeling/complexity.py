"""Parameter and multiply-add counts of a model, with the FFT cost counted separately.

MACs are those of ``nn.Conv2d`` and ``nn.Linear`` layers (the convention of the ResNet/FFC/DFF papers'
"FLOPs"); normalization, activations, pooling and the elementwise mask products are not counted. Each
``rfft2``/``irfft2`` of a real ``H x W`` map is estimated at ``2.5 * N * log2(N)`` real flops with
``N = H * W`` (half of the ``5 N log2 N`` of a complex FFT of ``N`` points), per channel and sample,
and reported on its own line because it is not a multiply-add count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .backbones.ffc import FFCConv2d, FourierUnit


@dataclass(frozen=True)
class Complexity:
    """Totals for one input of the given size."""

    params: int
    macs: int
    fft_flops: float

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def real_fft_flops(channels: int, height: int, width: int) -> float:
    """Estimated real flops of one ``rfft2`` (or ``irfft2``) of ``channels`` maps of ``height x width``."""
    n = height * width
    return 2.5 * n * math.log2(n) * channels if n > 1 else 0.0


def count_complexity(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> Complexity:
    """Parameters, conv/linear MACs and FFT flops of ``model`` for one ``(1, in_channels, H, W)`` input."""
    macs = 0
    fft_flops = 0.0

    def conv_hook(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_features

    def fourier_hook(module: FourierUnit, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal fft_flops
        _, c, h, w = inputs[0].shape
        fft_flops += 2 * real_fft_flops(c, h, w)  # forward and inverse transform

    def ffc_local_hook(module: FFCConv2d, inputs: tuple, output: torch.Tensor) -> None:
        # l2l and l2g may run as one fused conv (no module call to hook): count them from the shapes.
        nonlocal macs
        conv = module.l2l or module.l2g
        assert conv is not None  # hooked only on layers with a local input path
        kh, kw = conv.kernel_size
        paths = [c.out_channels for c in (module.l2l, module.l2g) if c is not None]
        macs += output.shape[0] * output.shape[2] * output.shape[3] * sum(paths) * module.in_local * kh * kw

    local_paths: set[int] = set()
    for module in model.modules():
        if isinstance(module, FFCConv2d):
            local_paths.update(id(c) for c in (module.l2l, module.l2g) if c is not None)
    hooks = []
    for module in model.modules():
        if isinstance(module, FFCConv2d) and (module.l2l is not None or module.l2g is not None):
            hooks.append(module.register_forward_hook(ffc_local_hook))
        elif isinstance(module, nn.Conv2d) and id(module) not in local_paths:
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
        elif isinstance(module, FourierUnit):
            hooks.append(module.register_forward_hook(fourier_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return Complexity(params=params, macs=macs, fft_flops=fft_flops)


@dataclass(frozen=True)
class ReferenceComplexity:
    """Published (or reference-computed) size of a network at 224x224 with a 1000-way ImageNet head."""

    params_m: float
    gflops: float
    source: str


# Figures to put beside ours (224x224, 1000 classes, last stride 2). GFLOPs here means multiply-adds.
REFERENCE_COMPLEXITY = {
    "resnet18": ReferenceComplexity(11.69, 1.81, "torchvision model card"),
    "resnet34": ReferenceComplexity(21.80, 3.66, "torchvision model card"),
    "resnet50": ReferenceComplexity(25.56, 4.09, "torchvision model card"),
    "resnet101": ReferenceComplexity(44.55, 7.80, "torchvision model card"),
    "ffc_resnet50": ReferenceComplexity(
        27.72, 4.45, "stock FFC-ResNet-50, a=0.5, no LFU (reference computation)"
    ),
    "ffc_resnet18": ReferenceComplexity(
        11.21, 1.60, "stock FFC-ResNet-18, a=0.5, no LFU (reference computation)"
    ),
    "dff_resnet50": ReferenceComplexity(27.7, 4.5, "DFF paper (CVPR 2023)"),
    "dff_resnet18": ReferenceComplexity(12.2, 2.0, "DFF paper (CVPR 2023)"),
}
