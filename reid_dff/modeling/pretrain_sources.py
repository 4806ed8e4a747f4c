"""What ``MODEL.PRETRAIN_PATH`` takes, detected from the file: torchvision ResNet weights (sliced into the
two branches, :func:`reid_dff.modeling.pretrained.load_imagenet_pretrained`), a reid-dff checkpoint of the
same backbone (stage 1 of the paper: every backbone key as is, the classifier dropped), or an official FFC
checkpoint (``reid_dff.modeling.ffc_official``). A file of another architecture is an
``ArchitectureMismatchError`` naming both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

import torch
from torch import nn

from .backbones.ffc import FFCConv2d, FourierUnit
from .backbones.filters import (
    FrequencyChannelAttention,
    SpatialAttentionMask,
    TaskChannelMask,
    TaskSpatialMask,
)
from .backbones.resnet import ARCHITECTURES, ResNet
from .pretrained import (
    LoadReport,
    WeightsMismatchError,
    _preview,
    _torch_load,
    _unwrap_state_dict,
    describe_resnet,
    load_imagenet_pretrained,
)


class ArchitectureMismatchError(WeightsMismatchError):
    """A pretrained file holds another architecture than the model; the one-line message names both."""


# ---------------------------------------------------------------------------------- MODEL.PRETRAIN_PATH
PRETRAIN_WHAT = "pretrained weights (MODEL.PRETRAIN_PATH)"
# Target keys of the DFF filters (mask generators): absent from FFC files, they keep their initialization.
_FILTER_KEY = re.compile(r"\.(spectrum_filter|input_filter|local_filter)\.")
_BACKBONE_NAME = re.compile(r"^(resnet|ffc_resnet|dff_resnet)(\d+)$")


@dataclass(frozen=True)
class BackboneArch:
    """What decides a backbone's weights: kind (``resnet``/``ffc_resnet``/``dff_resnet`` or another
    registered name), depth, global ratio (0 for ``resnet``) and DFF filter (``none`` unless ``dff_resnet``)."""

    kind: str
    depth: int | None = None
    ratio: float = 0.0
    filter: str = "none"

    @property
    def name(self) -> str:
        return f"{self.kind}{self.depth}" if self.depth else self.kind

    def __str__(self) -> str:
        details = []
        if self.kind in ("ffc_resnet", "dff_resnet"):
            details.append(f"ratio {self.ratio:g}")
        if self.kind == "dff_resnet":
            details.append(f"filter {self.filter}")
        return self.name + (f" ({', '.join(details)})" if details else "")

    def weights_fit(self, target: BackboneArch) -> bool:
        """Whether a backbone of this architecture initializes ``target`` with every key as is: the same
        network, or FFC into DFF of the same depth and ratio (the masks then keep their initialization)."""
        if (self.kind, self.depth) == (target.kind, target.depth) or {self.kind, target.kind} <= {
            "ffc_resnet",
            "dff_resnet",
        }:
            two_branch = self.kind in ("ffc_resnet", "dff_resnet")
            same_net = self.depth == target.depth and (not two_branch or self.ratio == target.ratio)
            mine = self.filter if self.kind == "dff_resnet" else "none"
            theirs = target.filter if target.kind == "dff_resnet" else "none"
            return same_net and (mine == theirs or mine == "none")
        return False


def describe_backbone(backbone: nn.Module) -> BackboneArch:
    """The architecture of a built backbone (``ResNet`` of any kind; other modules by class name)."""
    if not isinstance(backbone, ResNet):
        return BackboneArch(type(backbone).__name__)
    layers = [getattr(backbone, f"layer{i}") for i in range(1, 5)]
    shape = (type(layers[0][0]), [len(layer) for layer in layers])
    depth = next((d for d, (block, layers) in ARCHITECTURES.items() if (block, layers) == shape), None)
    if backbone.ratio == 0:
        return BackboneArch("resnet", depth)
    if backbone.filter_name == "none":
        return BackboneArch("ffc_resnet", depth, backbone.ratio)
    return BackboneArch("dff_resnet", depth, backbone.ratio, backbone.filter_name)


def arch_from_cfg(cfg_text: object) -> BackboneArch | None:
    """The backbone architecture a reid-dff checkpoint's ``cfg`` (YAML text) records; None if it has none."""
    from ..config.config import parse_yaml

    if not isinstance(cfg_text, str):
        return None
    try:
        model = (parse_yaml(cfg_text) or {}).get("MODEL", {})
        name = str(model["BACKBONE"])
    except Exception:  # noqa: BLE001 -- an unreadable cfg only loses the architecture check by name
        return None
    dff = model.get("DFF", {}) or {}
    m = _BACKBONE_NAME.match(name)
    if m is None:
        return BackboneArch(name)
    kind, depth = m.group(1), int(m.group(2))
    ratio = float(dff.get("RATIO", 0.5)) if kind != "resnet" else 0.0
    filter_name = str(dff.get("FILTER", "none")) if kind == "dff_resnet" else "none"
    if kind == "dff_resnet" and filter_name == "none":
        kind = "ffc_resnet"  # the same network, with the same keys
    return BackboneArch(kind, depth, ratio, filter_name)


def _mask_is_half(mask: nn.Module) -> bool:
    """Whether a mask generator outputs exactly 0.5 everywhere, whatever its input (zero-initialized)."""
    tensors: list[torch.Tensor | None]
    if isinstance(mask, SpatialAttentionMask):
        tensors = [mask.conv.weight, mask.conv.bias]
    elif isinstance(mask, TaskChannelMask | TaskSpatialMask):
        tensors = [mask.logits]
    elif isinstance(mask, FrequencyChannelAttention):
        tensors = [mask.fc2.weight, mask.fc2.bias]
    else:
        return False
    return all(t is None or not bool(t.detach().any()) for t in tensors)


def cancel_neutral_masks(backbone: nn.Module, report: LoadReport) -> None:
    """Make a DFF backbone that has just received FFC weights compute what the FFC computes.

    Each DFF mask starts at exactly 0.5 (its generator is zero-initialized), a uniform scale that the
    following BatchNorm does not undo in eval mode: its running statistics come from the file, measured
    without the mask. Each mask multiplies a
    linear map's input or output -- the Fourier unit's 1x1 conv (spectrum and pixel-input masks, through
    the linear FFT) or the local conv ``l2l`` (``ori_local``) -- so doubling that weight (exact in floating
    point) gives back the FFC's function while the masks keep their initialization. A mask that is not
    constant (``MODEL.DFF.MASK_INIT`` normal/kaiming) cannot be cancelled: the report notes it.
    """
    uncancelled = 0
    with torch.no_grad():
        for prefix, module in backbone.named_modules():
            sites = []
            if isinstance(module, FourierUnit):
                masks = [f for f in (module.input_filter, module.spectrum_filter) if f is not None]
                sites = [(masks, module.conv.weight, f"{prefix}.conv.weight")] if masks else []
            elif isinstance(module, FFCConv2d) and module.local_filter is not None and module.l2l is not None:
                sites = [([module.local_filter], module.l2l.weight, f"{prefix}.l2l.weight")]
            for masks, weight, key in sites:
                if all(_mask_is_half(f.get_submodule("mask")) for f in masks):
                    weight.mul_(2.0 ** len(masks))
                    report.rescaled.append(key)
                else:
                    uncancelled += 1
    if uncancelled:
        report.notes.append(
            f"{uncancelled} DFF mask(s) are not constant at initialization (MODEL.DFF.MASK_INIT), so this "
            "DFF network does not start equal to the FFC of the file"
        )


def _head_tensors(model: nn.Module, head: dict[str, torch.Tensor], report: LoadReport) -> dict:
    """``classifier.*`` values to load when the model's classifier has their shapes; else report them dropped."""
    classifier = getattr(model, "classifier", None)
    target = (
        {f"classifier.{k}": v for k, v in classifier.state_dict().items()}
        if isinstance(classifier, nn.Linear)
        else {}
    )
    if head and set(head) == set(target) and all(head[k].shape == target[k].shape for k in head):
        return head
    report.dropped.extend(head)
    return {}


def _fail(path: str, file_arch: object, target: BackboneArch, detail: str) -> NoReturn:
    raise ArchitectureMismatchError(
        f"{PRETRAIN_WHAT} {path} holds {file_arch} but the model's backbone is {target}: {detail}"
    )


def _load_backbone_exactly(
    model: nn.Module,
    converted: dict[str, torch.Tensor],
    head: dict[str, torch.Tensor],
    report: LoadReport,
    path: str,
    file_arch: object,
    masks_new: bool,
) -> None:
    """Load ``converted`` (backbone names) key for key: every backbone tensor, except the DFF masks when
    ``masks_new`` (an FFC file), must be in the file with its shape, and nothing else may be there."""
    backbone = getattr(model, "backbone", model)
    target_arch = describe_backbone(backbone)
    target = backbone.state_dict()
    problems = []
    for key, value in target.items():
        if key not in converted:
            if masks_new and _FILTER_KEY.search(key):
                report.new.append(key)
            else:
                problems.append(f"{key} missing in the file")
        elif converted[key].shape != value.shape:
            problems.append(f"{key} is {tuple(converted[key].shape)} in the file, {tuple(value.shape)} here")
    problems += [f"{key} is not in the model" for key in converted if key not in target]
    if problems:
        _fail(
            path, file_arch, target_arch, f"{len(problems)} tensor(s) differ, first: {_preview(problems, 3)}"
        )
    result = dict(target)
    for key in converted:
        result[key] = converted[key].to(target[key].dtype)
        report.loaded.append(key)
    backbone.load_state_dict(result, strict=True)
    head = _head_tensors(model, head, report)
    if head:
        model.get_submodule("classifier").load_state_dict(
            {k[len("classifier.") :]: v for k, v in head.items()}
        )
        report.loaded.extend(head)
    if masks_new:
        cancel_neutral_masks(backbone, report)


def _load_reid_dff(model: nn.Module, obj: object, state: dict, path: str) -> LoadReport:
    """A reid-dff checkpoint (any task) of the same backbone: ``backbone.*`` as is, the classifier dropped."""
    report = LoadReport(source_format="reid-dff")
    backbone = getattr(model, "backbone", model)
    target_arch = describe_backbone(backbone)
    file_arch = arch_from_cfg(obj.get("cfg") if isinstance(obj, Mapping) else None)
    report.source_arch = str(file_arch) if file_arch else "an unrecorded backbone (no cfg in the file)"
    if file_arch is not None and not file_arch.weights_fit(target_arch):
        _fail(
            path,
            file_arch,
            target_arch,
            "a pretrained file must hold the same backbone (MODEL.BACKBONE, MODEL.DFF.*)",
        )
    if any(k.startswith("backbone.") for k in state):
        converted = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
        rest = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    else:  # a bare backbone state dict
        converted, rest = state, {}
    head = {k: v for k, v in rest.items() if k.startswith("classifier.")}
    report.unused = [k for k in rest if k not in head]
    report.dropped.extend(head)  # a stage-1 classifier never initializes another task's head
    source_filter = file_arch.filter if file_arch else "none"
    masks_new = target_arch.kind == "dff_resnet" and (
        source_filter == "none" and not any(_FILTER_KEY.search(k) for k in converted)
    )
    _load_backbone_exactly(model, converted, {}, report, path, report.source_arch, masks_new)
    return report


def _load_official_ffc(model: nn.Module, obj: object, state: dict, path: str) -> LoadReport:
    """An official FFC-ResNet checkpoint into ``ffc_resnet*`` / ``dff_resnet*`` (see ``ffc_official``)."""
    from .ffc_official import convert_official_ffc, official_arch, unsupported_keys

    backbone = getattr(model, "backbone", model)
    target_arch = describe_backbone(backbone)
    name, depth, ratio = official_arch(state, obj.get("arch") if isinstance(obj, Mapping) else None)
    file_arch = f"an official FFC checkpoint of {name} (ratio {ratio:g})"
    report = LoadReport(source_format="official-ffc", source_arch=f"{name} (ratio {ratio:g})")
    extra = unsupported_keys(state)
    if extra:
        _fail(
            path,
            file_arch,
            target_arch,
            f"it has parts reid-dff's FFC lacks (Local Fourier Units, SE or gates: {_preview(extra, 2)})",
        )
    if target_arch.kind not in ("ffc_resnet", "dff_resnet") or (depth, ratio) != (
        target_arch.depth,
        target_arch.ratio,
    ):
        _fail(
            path,
            file_arch,
            target_arch,
            f"use ffc_{name.removeprefix('ffc_')} or dff_{name.removeprefix('ffc_')} with MODEL.DFF.RATIO {ratio:g}",
        )
    converted, unmapped = convert_official_ffc(state, backbone.state_dict())
    head = {f"classifier.{k[len('fc.') :]}": state[k] for k in unmapped if k.startswith("fc.")}
    report.unused = [k for k in unmapped if not k.startswith("fc.")]
    _load_backbone_exactly(model, converted, head, report, path, file_arch, masks_new=True)
    report.dropped = [f"fc.{k[len('classifier.') :]}" for k in report.dropped]  # the file's names
    return report


def detect_format(obj: object) -> str:
    """``"reid-dff"``, ``"official-ffc"`` or ``"torchvision"``: what a loaded pretrained file holds."""
    from .ffc_official import is_official_ffc

    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping) and isinstance(obj.get("cfg"), str):
        return "reid-dff"
    state = _unwrap_state_dict(obj, "<file>", PRETRAIN_WHAT)
    if is_official_ffc(state):
        return "official-ffc"
    if any(k.startswith("backbone.") for k in state) or any(
        re.search(r"\.(l2l|l2g|g2l|g2g)\.", k) for k in state
    ):
        return "reid-dff"
    return "torchvision"


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """``MODEL.PRETRAIN_PATH``: initialize a model's backbone from a file whose format is detected.

    - a torchvision ResNet state dict: by name into ``resnet*``, sliced into the branches of
      ``ffc_resnet*`` / ``dff_resnet*`` (:func:`load_imagenet_pretrained`);
    - a reid-dff checkpoint (``{"model", "cfg", ...}``, e.g. a stage-1 classification run) of the same
      backbone: every backbone tensor as is, the classifier dropped. An ``ffc_resnet`` file also
      initializes a ``dff_resnet`` of the same depth and ratio (masks as below);
    - an official FFC checkpoint (pkumivision/FFC): converted (``ffc_official``) into ``ffc_resnet*`` /
      ``dff_resnet*``; ``fc`` becomes the classifier of a classification model with the same shape and is
      dropped otherwise.

    When FFC weights enter a DFF network, its masks keep their initialization and the weights they
    multiply are scaled to cancel the masks' start at 0.5 (:func:`cancel_neutral_masks`), so the DFF
    network starts computing exactly what the FFC computes. A file of another architecture raises
    ``ArchitectureMismatchError`` naming both.
    """
    source = os.fspath(path)
    obj = _torch_load(source, PRETRAIN_WHAT)
    kind = detect_format(obj)
    state = _unwrap_state_dict(obj, source, PRETRAIN_WHAT)
    if kind == "official-ffc":
        return _load_official_ffc(model, obj, state, source)
    if kind == "reid-dff":
        return _load_reid_dff(model, obj, state, source)
    report = load_imagenet_pretrained(model, state, name=source)
    report.source_format, report.source_arch = "torchvision", describe_resnet(state)
    return report
