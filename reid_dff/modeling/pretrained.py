"""Loading weights: torchvision ImageNet ResNets into any backbone, and reid-dff checkpoints into a model.

Every file is read with ``torch.load(..., weights_only=True)``: a weights file can never run code.

ImageNet -> FFC/DFF mapping. A ResNet conv ``P.weight`` of shape ``(C_out, C_in, k, k)`` becomes, in the
``FFCConv2d`` at the same name ``P`` with ``C_in = C_l_in + C_g_in`` and ``C_out = C_l_out + C_g_out``::

    P.l2l.weight = W[:C_l_out, :C_l_in]      local  -> local
    P.l2g.weight = W[C_l_out:, :C_l_in]      local  -> global
    P.g2l.weight = W[:C_l_out, C_l_in:]      global -> local
    P.g2g.*      newly initialized         (the spectral transform replaces W[C_l_out:, C_l_in:])
    P.local_filter.* newly initialized     (ori_local only)

ResNet-18/34 have an identity shortcut in layer1; FFC puts a 0 -> a projection there
(``layer1.0.downsample.*``), which is newly initialized.

BatchNorm layers keep their names and channel order ``[local | global]``, so they load unchanged, as do
the stem and the plain blocks of layer4. ``fc.*`` of the file is reported as unused. Files without
BatchNorm ``num_batches_tracked`` counters (saved before PyTorch 0.4.1, such as torchvision's first
ImageNet ResNets) load too; the counters are reported as newly initialized.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

import torch
from torch import nn

from ..errors import ReidDffError
from .backbones.ffc import FFCConv2d, FourierUnit
from .backbones.filters import (
    FrequencyChannelAttention,
    SpatialAttentionMask,
    TaskChannelMask,
    TaskSpatialMask,
)
from .backbones.resnet import ARCHITECTURES, ResNet

FFC_PATHS = ("l2l", "l2g", "g2l")


class WeightsError(ReidDffError):
    """A weights file cannot be read as a state dict (the message names the file and the expected form)."""


class WeightsMismatchError(WeightsError):
    """A state dict does not fit the model (the message lists the first offending keys and a likely cause)."""


class ArchitectureMismatchError(WeightsMismatchError):
    """A pretrained file holds another architecture than the model; the one-line message names both."""


@dataclass
class LoadReport:
    """Which target keys were copied (``loaded``), cut from a larger conv (``sliced``), left at their
    initialization (``new``), and which keys of the file were not used (``unused``)."""

    loaded: list[str] = field(default_factory=list)
    sliced: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    #: keys of the file's classifier head, deliberately not loaded (another task or class count)
    dropped: list[str] = field(default_factory=list)
    #: loaded weights scaled by 2 to cancel a DFF mask that starts at exactly 0.5 (so DFF starts equal to FFC)
    rescaled: list[str] = field(default_factory=list)
    #: what the file is: "torchvision", "reid-dff" or "official-ffc" ("" for a state dict given directly)
    source_format: str = ""
    #: the file's architecture, e.g. "dff_resnet18 (ratio 0.5, filter ins_spatial)"
    source_arch: str = ""
    #: anything else the log should say (e.g. a mask that is not neutral, so DFF does not start as FFC)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        head = f"{self.source_format} file of {self.source_arch}: " if self.source_format else ""
        return (
            head + f"{len(self.loaded)} tensors loaded, {len(self.sliced)} sliced from ResNet convs, "
            f"{len(self.new)} newly initialized, {len(self.unused)} unused in the file"
            + (f" ({_preview(self.unused)})" if self.unused else "")
            + (f", classifier dropped ({_preview(self.dropped)})" if self.dropped else "")
            + (f", {len(self.rescaled)} scaled by 2 for the 0.5 start of the masks" if self.rescaled else "")
            + "".join(f"; {note}" for note in self.notes)
        )


def _preview(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def torch_load_problem(path: str | os.PathLike, error: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in one short clause (torch's own message runs to
    several lines of advice that does not apply here, such as retrying with ``weights_only=False``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        return f"it cannot be read ({e.strerror})"
    if not head.startswith(b"PK\x03\x04") and head[:1] != b"\x80":  # torch.save: a zip archive, or a pickle
        return "it is not a file written by torch.save (neither a zip archive nor a pickle)"
    if head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("data.pkl") for name in archive.namelist()):
                return "it is a zip archive that torch.save did not write (a .npz features file, say)"
    text = str(error)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].strip()
        detail = detail.split(". Please use", 1)[
            0
        ]  # torch's advice to allowlist classes: not for others' files
        return f"it holds objects that only arbitrary code could rebuild ({detail})"
    lines = text.strip().splitlines()
    detail = f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
    return f"the file is corrupt or truncated ({detail})"


def _torch_load(path: str | os.PathLike, what: str) -> object:
    """``torch.load(path, weights_only=True)`` on CPU; errors name the file and the expected form."""
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(
            f"{what} file not found: {source} (expected a local .pth file; nothing is downloaded)"
        )
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any failure to read a user's file is reported, not raised as-is
        raise WeightsError(
            f"cannot read {what} file {source} with torch.load(weights_only=True): "
            f"{torch_load_problem(source, e)}. Expected a "
            "state dict (name -> tensor) saved with torch.save; files that need arbitrary code to "
            "load are refused"
        ) from e


def _unwrap_state_dict(obj: object, source: str, what: str) -> dict[str, torch.Tensor]:
    """The state dict in ``obj`` (under ``"model"``/``"state_dict"`` or bare), ``module.`` stripped."""
    if isinstance(obj, Mapping):
        for wrapper in ("model", "state_dict"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise WeightsError(
            f"{what} {source} is not a state dict: expected a non-empty mapping of parameter names to "
            "tensors, or a dict holding one under 'model' or 'state_dict'"
        )
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def read_state_dict(
    path_or_state: str | os.PathLike | Mapping, what: str = "weights"
) -> dict[str, torch.Tensor]:
    """A state dict from a file (``weights_only=True``) or a mapping; unwraps ``"model"``/``"state_dict"``
    and a DataParallel ``module.`` prefix."""
    if isinstance(path_or_state, Mapping):
        return _unwrap_state_dict(path_or_state, "<state dict>", what)
    return _unwrap_state_dict(_torch_load(path_or_state, what), os.fspath(path_or_state), what)


def _has_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in state)


def describe_resnet(state: Mapping[str, torch.Tensor]) -> str:
    """Best guess of which torchvision ResNet a state dict holds (e.g. ``"resnet18"``), for messages."""
    blocks = [
        len({m.group(1) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in range(1, 5)
    ]
    bottleneck = any(".conv3." in k for k in state)
    known = {
        (2, 2, 2, 2, False): "resnet18",
        (3, 4, 6, 3, False): "resnet34",
        (3, 4, 6, 3, True): "resnet50",
        (3, 4, 23, 3, True): "resnet101",
        (3, 8, 36, 3, True): "resnet152",
    }
    return known.get((*blocks, bottleneck), f"an unrecognized network (blocks per layer {blocks})")


def load_imagenet_pretrained(
    model_or_backbone: nn.Module, path: str | os.PathLike | Mapping, name: str | None = None
) -> LoadReport:
    """Initialize a backbone (or ``model.backbone``) from a local torchvision ResNet state dict file.

    Plain ResNets load every tensor by name; FFC/DFF networks take slices of each ResNet conv for their
    l->l, l->g, g->l paths (see the module docstring). Raises ``FileNotFoundError`` / ``WeightsError``
    for an unreadable file and ``WeightsMismatchError`` for weights of another architecture. ``path`` may
    also be an already loaded state dict, called ``name`` in messages.
    """
    backbone = getattr(model_or_backbone, "backbone", model_or_backbone)
    label = name or (os.fspath(path) if not isinstance(path, Mapping) else "<state dict>")
    source = read_state_dict(path, what="ImageNet ResNet weights (MODEL.PRETRAIN_PATH)")
    target = backbone.state_dict()
    result = dict(target)
    report = LoadReport()
    used: set[str] = set()
    problems: list[str] = []
    handled: set[str] = set()

    for prefix, module in backbone.named_modules():
        if not isinstance(module, FFCConv2d):
            continue
        handled.update(k for k in target if k.startswith(prefix + "."))
        src_key = f"{prefix}.weight"
        weight = source.get(src_key)
        if (
            weight is None
            and prefix.endswith("downsample.0")
            and not _has_prefix(source, prefix[: -len("0")])
        ):
            # ResNet-18/34 layer1 has an identity shortcut; FFC needs a 0 -> a projection there, which
            # (with its BN) has nothing to load from.
            bn_prefix = prefix[: -len("0")] + "1."
            fresh = [k for k in target if k.startswith(prefix + ".") or k.startswith(bn_prefix)]
            handled.update(fresh)
            report.new.extend(fresh)
            continue
        expected = (module.out_channels, module.in_channels)
        if weight is None or weight.dim() != 4 or tuple(weight.shape[:2]) != expected:
            found = "missing" if weight is None else f"shape {tuple(weight.shape)}"
            problems.append(f"{src_key}: {found}, expected (C_out, C_in) = {expected}")
            continue
        used.add(src_key)
        rows = {"l": slice(0, module.out_local), "g": slice(module.out_local, None)}
        cols = {"l": slice(0, module.in_local), "g": slice(module.in_local, None)}
        for name in FFC_PATHS:
            conv = getattr(module, name)
            if conv is None:
                continue
            key = f"{prefix}.{name}.weight"
            piece = weight[rows[name[2]], cols[name[0]]]
            if piece.shape != target[key].shape:
                problems.append(
                    f"{src_key}: slice for {key} has shape {tuple(piece.shape)}, expected {tuple(target[key].shape)}"
                )
                continue
            result[key] = piece.clone()
            report.sliced.append(key)
        report.new.extend(k for k in target if k.startswith(prefix + ".") and k not in report.sliced)

    for key, value in target.items():
        if key in handled:
            continue
        if key not in source and key.endswith(".num_batches_tracked"):
            # Files saved before PyTorch 0.4.1 (torchvision's original ImageNet ResNets) have no
            # BatchNorm step counters; torchvision loads them, and so do we: the counter starts at 0.
            report.new.append(key)
        elif key not in source:
            problems.append(f"{key}: missing in the file")
        elif source[key].shape != value.shape:
            problems.append(
                f"{key}: shape {tuple(source[key].shape)} in the file, expected {tuple(value.shape)}"
            )
        else:
            result[key] = source[key].to(value.dtype)
            report.loaded.append(key)
            used.add(key)

    if problems:
        raise WeightsMismatchError(
            f"{label} does not fit this backbone ({type(backbone).__name__} with {backbone.out_channels} output "
            f"channels): the file looks like {describe_resnet(source)}; expected torchvision weights of the "
            f"same depth as MODEL.BACKBONE. {len(problems)} problem(s), first: {_preview(problems, 4)}"
        )
    backbone.load_state_dict(result, strict=True)
    report.unused = [k for k in source if k not in used]
    return report


def _mismatch_hint(keys: list[str]) -> str:
    if all(k.startswith("classifier.") for k in keys):
        return (
            "only the classifier differs (another number of training identities): pass "
            "ignore_classifier=True to load the rest"
        )
    if any(re.search(r"(spectrum_filter|input_filter|local_filter)\.", k) for k in keys):
        return "MODEL.DFF.FILTER probably differs from the checkpoint's"
    if any(re.search(r"\.(l2l|l2g|g2l|g2g)\.", k) for k in keys):
        return "MODEL.BACKBONE (resnet vs ffc_/dff_resnet) or MODEL.DFF.RATIO probably differs from the checkpoint's"
    return "MODEL.BACKBONE (depth), MODEL.DFF.* or MODEL.HEAD.* probably differs from the checkpoint's"


def load_model_weights(
    model: nn.Module,
    path_or_state: str | os.PathLike | Mapping,
    ignore_classifier: bool = False,
    source: str | None = None,
) -> LoadReport:
    """Load a reid-dff checkpoint (``{"model": state_dict, ...}`` or a bare state dict) into a built model.

    Every key and shape must match, except ``classifier.*`` when ``ignore_classifier`` (e.g. evaluating a
    model trained on other identities); a mismatch raises ``WeightsMismatchError`` naming the keys.
    ``source`` names an already loaded state in messages (default: the path, or ``MODEL.WEIGHTS``).
    """
    what = "reid-dff checkpoint" if source else "reid-dff checkpoint (MODEL.WEIGHTS)"
    state = read_state_dict(path_or_state, what=what)
    target = model.state_dict()

    def skipped(key: str) -> bool:
        return ignore_classifier and key.startswith("classifier.")

    missing = [k for k in target if not skipped(k) and k not in state]
    unexpected = [k for k in state if not skipped(k) and k not in target]
    mismatched = [k for k in target if not skipped(k) and k in state and state[k].shape != target[k].shape]
    if missing or unexpected or mismatched:
        if source is None:
            source = path_or_state if not isinstance(path_or_state, Mapping) else "<state dict>"
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing in the checkpoint: {_preview(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} not in the model: {_preview(unexpected)}")
        if mismatched:
            shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}" for k in mismatched]
            parts.append(f"{len(mismatched)} with other shapes (checkpoint vs model): {_preview(shapes)}")
        raise WeightsMismatchError(
            f"{what} {source} does not match the model: {'; '.join(parts)}. "
            f"{_mismatch_hint(missing + unexpected + mismatched)}"
        )
    result = dict(target)
    report = LoadReport()
    for key in target:
        if skipped(key):
            report.new.append(key)
        else:
            result[key] = state[key]
            report.loaded.append(key)
    report.unused = [k for k in state if skipped(k)]
    model.load_state_dict(result, strict=True)
    return report


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
