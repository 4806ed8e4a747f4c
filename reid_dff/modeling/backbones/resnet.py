"""One ResNet builder for Base (plain ResNet), SBase (FFC-ResNet) and DFF-ResNet with every filter variant.

With ``ratio == 0`` every layer is an ``nn.Conv2d`` and the state_dict keys are torchvision's. With
``0 < ratio < 1`` the convolutions of the residual blocks become ``FFCConv2d`` (layer1 first block 0->a,
a->a through layer3, layer4 first block a->0, then plain blocks) under the same names, so ``conv1``,
``bn1``, ``downsample.0`` ... still exist and each FFC's l->l, l->g, g->l paths are slices of the
corresponding ResNet conv.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ...config import CfgNode, ConfigError
from .ffc import FFCConv2d
from .filters import MASK_GENERATORS, FilterSettings, check_filter_name
from .registry import BACKBONE_REGISTRY

Size = tuple[int, int]


def conv_output_size(size: Size, kernel_size: int, stride: int, padding: int) -> Size:
    """Spatial size after a convolution or max-pool with these settings."""
    height, width = ((s + 2 * padding - kernel_size) // stride + 1 for s in size)
    return height, width


def make_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    ratio_in: float,
    ratio_out: float,
    size: Size,
    settings: FilterSettings,
) -> nn.Module:
    """A plain ``nn.Conv2d`` when both ratios are 0, else an ``FFCConv2d`` (bias-free, 'same' padding)."""
    if ratio_in == 0 and ratio_out == 0:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
    return FFCConv2d(in_channels, out_channels, kernel_size, stride, ratio_in, ratio_out, size, settings)


class BasicBlock(nn.Module):
    """Two 3x3 (FFC-)conv-BN layers with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        ratio_in: float,
        ratio_out: float,
        size: Size,
        settings: FilterSettings,
        downsample: nn.Module | None = None,
    ):
        super().__init__()
        self.conv1 = make_conv(in_planes, planes, 3, stride, ratio_in, ratio_out, size, settings)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        out_size = conv_output_size(size, 3, stride, 1)
        self.conv2 = make_conv(planes, planes, 3, 1, ratio_out, ratio_out, out_size, settings)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carries the stride) -> 1x1 (FFC-)conv-BN with a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        ratio_in: float,
        ratio_out: float,
        size: Size,
        settings: FilterSettings,
        downsample: nn.Module | None = None,
    ):
        super().__init__()
        out_size = conv_output_size(size, 3, stride, 1)
        self.conv1 = make_conv(in_planes, planes, 1, 1, ratio_in, ratio_out, size, settings)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(planes, planes, 3, stride, ratio_out, ratio_out, size, settings)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = make_conv(planes, planes * 4, 1, 1, ratio_out, ratio_out, out_size, settings)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet / FFC-ResNet / DFF-ResNet backbone: ``(B, 3, H, W) -> (B, out_channels, H/32 or H/16, ...)``.

    ``ratio`` is the global-branch fraction (0: plain ResNet); ``settings.name`` selects the DFF filter
    (``"none"``: SBase). ``input_size`` is only used to size ``task_spatial`` masks. The output is the
    local branch after layer4, whose first block maps a -> 0.
    """

    # Registered by add_module in __init__.
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        ratio: float = 0.0,
        settings: FilterSettings | None = None,
        last_stride: int = 1,
        input_size: Size = (256, 128),
    ):
        super().__init__()
        if not 0.0 <= ratio < 1.0:
            raise ConfigError(f"MODEL.DFF.RATIO must be in [0, 1) (0.5 for DFF-R50), got {ratio}")
        if last_stride not in (1, 2):
            raise ConfigError(f"MODEL.LAST_STRIDE must be 1 or 2, got {last_stride}")
        settings = settings or FilterSettings(name="none")
        check_filter_name(settings.name)
        self.ratio = ratio
        self.filter_name = settings.name if ratio > 0 else "none"
        self.in_planes = 64
        narrowest_global = int(self.in_planes * ratio)  # the 64-channel layers have the fewest
        if ratio > 0 and narrowest_global < 2:
            raise ConfigError(
                f"MODEL.DFF.RATIO {ratio} leaves {narrowest_global} global channel(s) in the 64-channel layers; "
                f"the spectral transform needs at least 2 (a ratio of at least {2 / self.in_planes})"
            )
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        size = conv_output_size(conv_output_size((input_size[0], input_size[1]), 7, 2, 3), 3, 2, 1)
        plan = [
            (64, 1, 0.0, ratio),
            (128, 2, ratio, ratio),
            (256, 2, ratio, ratio),
            (512, last_stride, ratio, 0.0),
        ]
        for index, ((planes, stride, ratio_in, ratio_out), blocks) in enumerate(zip(plan, layers), start=1):
            layer, size = self._make_layer(block, planes, blocks, stride, ratio_in, ratio_out, size, settings)
            self.add_module(f"layer{index}", layer)
        self.out_channels = 512 * block.expansion
        self._init_weights()

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int,
        ratio_in: float,
        ratio_out: float,
        size: Size,
        settings: FilterSettings,
    ) -> tuple[nn.Sequential, Size]:
        downsample = None
        out_planes = planes * block.expansion
        # A change of ratio (0 -> a, a -> 0) also needs a projection, as in FFC's reference ResNet.
        if stride != 1 or self.in_planes != out_planes or ratio_in != ratio_out:
            downsample = nn.Sequential(
                make_conv(self.in_planes, out_planes, 1, stride, ratio_in, ratio_out, size, settings),
                nn.BatchNorm2d(out_planes),
            )
        modules = [block(self.in_planes, planes, stride, ratio_in, ratio_out, size, settings, downsample)]
        size = conv_output_size(size, 3, stride, 1)
        self.in_planes = out_planes
        for _ in range(1, blocks):
            modules.append(block(self.in_planes, planes, 1, ratio_out, ratio_out, size, settings))
        return nn.Sequential(*modules), size

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Mask generators have their own start (a uniform 0.5 mask), undoing the generic conv init above.
        for m in self.modules():
            if isinstance(m, MASK_GENERATORS):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


ARCHITECTURES: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}

# kind -> does the network have a global branch / does it read MODEL.DFF.FILTER
KINDS = {"resnet": (False, False), "ffc_resnet": (True, False), "dff_resnet": (True, True)}


def build_resnet(cfg: CfgNode, depth: int, kind: str) -> ResNet:
    """A ResNet of ``depth`` (18/34/50/101) and ``kind`` (resnet | ffc_resnet | dff_resnet) from ``cfg``."""
    block, layers = ARCHITECTURES[depth]
    two_branch, filtered = KINDS[kind]
    ratio = float(cfg.MODEL.DFF.RATIO) if two_branch else 0.0
    if two_branch and not 0.0 < ratio < 1.0:
        raise ConfigError(f"MODEL.DFF.RATIO must be in (0, 1) for {kind}{depth}, got {ratio}")
    settings = FilterSettings(
        name=cfg.MODEL.DFF.FILTER if filtered else "none",
        mask_kernel=int(cfg.MODEL.DFF.MASK_KERNEL),
        se_reduction=int(cfg.MODEL.DFF.SE_REDUCTION),
        mask_input=str(cfg.MODEL.DFF.MASK_INPUT),
        mask_layout=str(cfg.MODEL.DFF.MASK_LAYOUT),
        mask_init=str(cfg.MODEL.DFF.MASK_INIT),
    )
    return ResNet(
        block,
        layers,
        ratio=ratio,
        settings=settings,
        last_stride=int(cfg.MODEL.LAST_STRIDE),
        input_size=tuple(cfg.INPUT.SIZE_TRAIN),
    )


for _kind in KINDS:
    for _depth in ARCHITECTURES:
        BACKBONE_REGISTRY.register(f"{_kind}{_depth}")(partial(build_resnet, depth=_depth, kind=_kind))
