"""The official FFC code's checkpoints (pkumivision/FFC, ``model_zoo/ffc_resnet.py``) in reid-dff's names.

The official FFC-ResNet carries ``(x_l, x_g)`` as a tuple, wraps every FFC in an ``FFC_BN_ACT`` with one
BatchNorm per branch, and saves through ``DataParallel`` (``module.`` prefixes) inside
``{"arch", "state_dict", "epoch", "best_acc1", "optimizer"}``. reid-dff keeps one ``[local | global]``
tensor with one BatchNorm over both branches, under torchvision's block names. Per residual block
``layerL.B`` (``K`` = 1..3) the mapping is::

    official                                           reid-dff
    layerL.B.convK.ffc.convl2l.weight                  layerL.B.convK.l2l.weight  (or .weight: a 0 -> 0 conv)
    layerL.B.convK.ffc.conv{l2g,g2l}.weight            layerL.B.convK.{l2g,g2l}.weight
    layerL.B.convK.ffc.convg2g.conv1.{0,1}.*           layerL.B.convK.g2g.conv1.{0,1}.*
    layerL.B.convK.ffc.convg2g.fu.conv_layer.weight    layerL.B.convK.g2g.fu.conv.weight   (re/im permuted)
    layerL.B.convK.ffc.convg2g.fu.bn.*                 layerL.B.convK.g2g.fu.bn.*          (re/im permuted)
    layerL.B.convK.ffc.convg2g.conv2.weight            layerL.B.convK.g2g.conv2.weight
    layerL.B.convK.bn_l.* , .bn_g.*                    layerL.B.bnK.*   (concatenated [local | global])
    layerL.0.downsample.ffc.* / .bn_l.* / .bn_g.*      layerL.0.downsample.0.* / downsample.1.*
    conv1.*, bn1.*                                     conv1.*, bn1.*   (the stem, unchanged)
    fc.*                                               the classifier of a classification model

The Fourier unit's ``2C`` channels: the official code interleaves real and imaginary parts per channel
(``[Re0, Im0, Re1, Im1, ...]``), reid-dff stacks them (``[Re0, Re1, ..., Im0, Im1, ...]``), so our channel
``j`` is the official channel ``2 * (j % C) + j // C`` on both axes of the 1x1 conv and in all four BN
vectors. Local Fourier units (``lfu``), the SE block and the gated variant have no counterpart here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# A key of the official FFC-ResNet (after ``module.`` is stripped) that no torchvision or reid-dff file has.
OFFICIAL_KEY = re.compile(r"\.ffc\.conv(l2l|l2g|g2l|g2g)\.")
_BLOCK = re.compile(r"^(layer\d+\.\d+)\.(conv(\d)|downsample)\.(ffc|bn_l|bn_g)\.(.+)$")
_UNSUPPORTED = re.compile(r"(\.lfu\.|\.se_block\.|\.gate\.)")
_FFC_PATHS = {"convl2l": "l2l", "convl2g": "l2g", "convg2l": "g2l"}


def is_official_ffc(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict (``module.`` already stripped) is an official FFC-ResNet's."""
    return any(OFFICIAL_KEY.search(k) for k in state)


def interleaved_to_stacked(channels2: int) -> torch.Tensor:
    """Index ``p`` with ``stacked = interleaved[p]`` for ``2C`` real/imaginary channels: ``p[j] = 2(j % C) + j // C``."""
    half = channels2 // 2
    j = torch.arange(channels2)
    return 2 * (j % half) + j // half


def official_arch(state: Mapping[str, torch.Tensor], arch: object = None) -> tuple[str, int | None, float]:
    """``(name, depth, ratio)`` of an official FFC-ResNet state dict; ``arch`` is the file's ``arch`` entry.

    The depth comes from the block counts, the ratio from the first FFC's global share of output channels.
    """
    blocks = tuple(
        len({m.group(1) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in range(1, 5)
    )
    bottleneck = any(re.match(r"layer\d+\.\d+\.conv3\.", k) for k in state)
    depths: dict[tuple[tuple[int, ...], bool], int] = {
        ((2, 2, 2, 2), False): 18,
        ((3, 4, 6, 3), False): 34,
        ((3, 4, 6, 3), True): 50,
        ((3, 4, 23, 3), True): 101,
    }
    depth = depths.get((blocks, bottleneck))
    local = state.get("layer1.0.conv1.bn_l.weight")
    glob = state.get("layer1.0.conv1.bn_g.weight")
    ratio = 0.0
    if local is not None and glob is not None:
        ratio = glob.numel() / (local.numel() + glob.numel())
    name = arch if isinstance(arch, str) and arch else (f"ffc_resnet{depth}" if depth else "an FFC-ResNet")
    return name, depth, ratio


def unsupported_keys(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Keys of parts reid-dff's FFC does not have: Local Fourier units, SE blocks, gates."""
    return [k for k in state if _UNSUPPORTED.search(k)]


def convert_official_ffc(
    state: Mapping[str, torch.Tensor], target_keys: Mapping[str, object]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The backbone tensors of an official state dict under reid-dff names, and the keys left unmapped.

    ``target_keys`` (the backbone's state dict, or any mapping with its keys) decides whether an official
    ``convl2l`` becomes an ``FFCConv2d``'s ``l2l`` or a plain conv (0 -> 0 layers). ``fc.*`` is not
    converted (the caller maps it to a classifier or drops it) and is returned among the unmapped keys.
    """
    out: dict[str, torch.Tensor] = {}
    norms: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    unmapped: list[str] = []
    for key, value in state.items():
        if key.startswith(("conv1.", "bn1.")):
            out[key] = value
            continue
        m = _BLOCK.match(key)
        if m is None:
            unmapped.append(key)
            continue
        block, site, k, part, rest = m.groups()
        conv = f"{block}.{site}" if k else f"{block}.downsample.0"
        norm = f"{block}.bn{k}" if k else f"{block}.downsample.1"
        if part in ("bn_l", "bn_g"):
            norms.setdefault(norm, {}).setdefault(rest, {})[part] = value
            continue
        path, _, tail = rest.partition(".")
        if path in _FFC_PATHS and tail == "weight":
            name = f"{conv}.{_FFC_PATHS[path]}.weight"
            if path == "convl2l" and f"{conv}.weight" in target_keys:
                name = f"{conv}.weight"  # a 0 -> 0 layer is a plain conv here
            out[name] = value
        elif path == "convg2g" and tail.startswith(("conv1.", "conv2.")):
            out[f"{conv}.g2g.{tail}"] = value
        elif path == "convg2g" and tail == "fu.conv_layer.weight":
            p = interleaved_to_stacked(value.shape[0])
            out[f"{conv}.g2g.fu.conv.weight"] = value[p][:, p].clone()
        elif path == "convg2g" and tail.startswith("fu.bn."):
            if value.dim() == 1:
                value = value[interleaved_to_stacked(value.shape[0])].clone()
            out[f"{conv}.g2g.fu.bn.{tail[len('fu.bn.') :]}"] = value
        else:
            unmapped.append(key)
    for norm, params in norms.items():
        for param, parts in params.items():
            if param == "num_batches_tracked":
                out[f"{norm}.{param}"] = max(parts.values(), key=int)
            else:
                out[f"{norm}.{param}"] = torch.cat([parts[p] for p in ("bn_l", "bn_g") if p in parts])
    return out, unmapped
