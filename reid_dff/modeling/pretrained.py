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

import torch
import yaml
from torch import nn

from ..errors import ReidDffError
from .backbones.ffc import FFCConv2d

FFC_PATHS = ("l2l", "l2g", "g2l")


class WeightsError(ReidDffError):
    """A weights file cannot be read as a state dict (the message names the file and the expected form)."""


class WeightsMismatchError(WeightsError):
    """A state dict does not fit the model (the message lists the first offending keys and a likely cause)."""


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


def weights_only_refusal(text: str) -> str:
    """The one line of torch's ``weights_only`` refusal that names what was refused (torch 2.x words it as
    ``WeightsUnpickler error: Unsupported global: ...`` or ``Trying to load unsupported GLOBAL ... whose
    module ... is blocked``), without torch's advice to allowlist classes or to load unsafely."""
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    advice = ("Weights only load failed", "Check the documentation", "(1)", "(2)", "In PyTorch")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(advice):
            return line.split(". Please use", 1)[0].rstrip(".")[:200]
    return "a class or function outside the allowed tensors, numbers and containers"


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
    if "WeightsUnpickler error:" in text or "Weights only load failed" in text:
        refused = weights_only_refusal(text)
        return f"it holds objects that only arbitrary code could rebuild ({refused}); refused for safety"
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
            f"{torch_load_problem(source, e)}; expected a state dict saved with torch.save"
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
    known: dict[tuple[int | bool, ...], str] = {
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
            f"{label} looks like {describe_resnet(source)}, not {type(backbone).__name__} weights "
            f"({backbone.out_channels} output channels, MODEL.BACKBONE); {len(problems)} problem(s), "
            f"first: {_preview(problems, 4)}"
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


# MODEL settings that leave every tensor's name and shape as it is.
_SHAPE_NEUTRAL_KEYS = (
    "MODEL.DEVICE",
    "MODEL.PRETRAIN_PATH",
    "MODEL.WEIGHTS",
    "MODEL.LAST_STRIDE",
    "MODEL.LOSSES",
    "MODEL.HEAD.NUM_CLASSES",
    "MODEL.HEAD.GEM_P",
    "MODEL.DFF.MASK_INIT",
    "MODEL.DFF.MASK_WEIGHT_DECAY",
)


def _flat_model_settings(values: Mapping, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat_model_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _config_differences(cfg: Mapping | None, checkpoint: str | os.PathLike | Mapping) -> str:
    """``MODEL.*`` settings of ``cfg`` that differ from those the checkpoint was trained with (its ``"cfg"``
    YAML text), as a clause for a mismatch message; empty when unknown or none differ."""
    if cfg is None or not isinstance(cfg.get("MODEL"), Mapping):
        return ""
    state = checkpoint
    if not isinstance(state, Mapping):
        try:
            state = torch.load(os.fspath(state), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 -- the mismatch is reported either way; this only adds the cause
            return ""
    text = state.get("cfg") if isinstance(state, Mapping) else None
    try:
        trained = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        return ""
    if not isinstance(trained, Mapping) or not isinstance(trained.get("MODEL"), Mapping):
        return ""
    ours = _flat_model_settings(cfg["MODEL"], "MODEL.")
    theirs = _flat_model_settings(trained["MODEL"], "MODEL.")
    differ = [
        f"{key} (checkpoint has {theirs[key]}, config has {ours[key]})"
        for key in ours
        if key in theirs and theirs[key] != ours[key] and not key.startswith(_SHAPE_NEUTRAL_KEYS)
    ]
    if not differ:
        return ""
    return f"The config differs from the one the checkpoint was trained with in {'; '.join(differ)}"


def load_model_weights(
    model: nn.Module,
    path_or_state: str | os.PathLike | Mapping,
    ignore_classifier: bool = False,
    source: str | None = None,
    cfg: Mapping | None = None,
    checkpoint: str | os.PathLike | Mapping | None = None,
) -> LoadReport:
    """Load a reid-dff checkpoint (``{"model": state_dict, ...}`` or a bare state dict) into a built model.

    Every key and shape must match, except ``classifier.*`` when ``ignore_classifier`` (e.g. evaluating a
    model trained on other identities); a mismatch raises ``WeightsMismatchError`` naming the keys.
    ``source`` names an already loaded state in messages (default: the path, or ``MODEL.WEIGHTS``).
    With ``cfg``, the config ``model`` was built from, a mismatch names the ``MODEL.*`` settings that differ
    from the checkpoint's own ``"cfg"`` entry (read from ``checkpoint``, default ``path_or_state``).
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
            source = os.fspath(path_or_state) if not isinstance(path_or_state, Mapping) else "<state dict>"
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing in the checkpoint: {_preview(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} not in the model: {_preview(unexpected)}")
        if mismatched:
            shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}" for k in mismatched]
            parts.append(f"{len(mismatched)} with other shapes (checkpoint vs model): {_preview(shapes)}")
        cause = _config_differences(cfg, checkpoint if checkpoint is not None else path_or_state)
        raise WeightsMismatchError(
            f"{what} {source} does not match the model: {'; '.join(parts)}. "
            f"{cause or _mismatch_hint(missing + unexpected + mismatched)}"
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
