"""An exported ``.onnx`` embedding model: its metadata and an onnxruntime session that acts as the model.

The exporter (:mod:`.onnx_export`) stores in the ONNX file's ``metadata_props`` everything a consumer needs
to feed it and to know where it came from (:class:`OnnxModelInfo`): input layout and size, pixel scale,
mean and std, metric, embedding size, backbone, the source checkpoint's SHA-256 and the config it was
trained with. :class:`OnnxEmbeddingModel` runs the file with onnxruntime behind the ``nn.Module`` call
that :func:`reid_dff.evaluation.features.extract_features` expects, so ``FeatureExtractor`` extracts through
it with the same loader, transforms and flip averaging as from a checkpoint.

onnx, onnxscript and onnxruntime are the optional ``deploy`` extra: they are imported here only when an
ONNX model is exported or run, and their absence is one :class:`DeployExtraMissingError`.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import CfgNode, ConfigError, cfg_from_text
from ..errors import ReidDffError

__all__ = [
    "ONNX_FORMAT",
    "ONNX_FORMAT_VERSION",
    "DeployExtraMissingError",
    "OnnxEmbeddingModel",
    "OnnxModelError",
    "OnnxModelInfo",
    "import_deploy_module",
    "is_onnx_path",
    "read_onnx_info",
]

ONNX_FORMAT = "reid-dff-embedding"
ONNX_FORMAT_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"

# The config keys whose value the graph or its preprocessing is fixed to: an override may not change them.
FIXED_KEYS = ("INPUT.SIZE_TEST", "INPUT.PIXEL_MEAN", "INPUT.PIXEL_STD", "INPUT.STYLE", "MODEL.BACKBONE")


class DeployExtraMissingError(ReidDffError, ImportError):
    """A package of the optional ``deploy`` extra (onnx, onnxscript, onnxruntime) is not installed."""


class OnnxModelError(ReidDffError):
    """An ``.onnx`` file is missing, unreadable, not a reid-dff embedding model, or used inconsistently."""


def import_deploy_module(name: str, purpose: str) -> ModuleType:
    """``import name`` (onnx, onnxscript or onnxruntime); :class:`DeployExtraMissingError` when absent."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise DeployExtraMissingError(
            f"{purpose} needs the Python package {name!r}, which is not installed (it belongs to reid-dff's "
            f"optional 'deploy' extra: onnx, onnxscript, onnxruntime)"
        ) from e


def is_onnx_path(source: Any) -> bool:
    """Whether ``source`` is a path (str or ``os.PathLike``) to an ``.onnx`` file, by its extension."""
    return isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith(".onnx")


@dataclass
class OnnxModelInfo:
    """What an exported embedding model is and how to feed it (the ``metadata_props`` of the file).

    The graph takes ``images`` ``(B, 3, H, W)`` float32 RGB, each pixel ``(value / 255 - mean) / std``
    after bringing the crop to ``(H, W)`` as ``input_resize`` says, and returns ``embeddings`` ``(B, D)``
    float32 (the post-BNNeck feature the evaluator ranks; L2-normalize them for the cosine metric).
    """

    input_size: tuple[int, int]
    pixel_mean: list[float]
    pixel_std: list[float]
    metric: str
    embedding_dim: int
    backbone: str
    dff_filter: str
    flip_feats: bool
    checkpoint_sha256: str
    checkpoint_path: str
    opset: int
    config: str = field(repr=False, default="")
    # data.transforms.eval_resize: "stretch" to input_height x input_width, or "shorter_side_center_crop"
    # (shorter side to input_shorter_side, then the centre crop).
    input_resize: str = "stretch"
    input_shorter_side: int = 0

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` key/value strings (numbers and lists as JSON)."""
        return {
            "format": ONNX_FORMAT,
            "format_version": str(ONNX_FORMAT_VERSION),
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "input_layout": "NCHW",
            "input_color": "RGB",
            "input_height": str(self.input_size[0]),
            "input_width": str(self.input_size[1]),
            "input_resize": self.input_resize,
            "input_shorter_side": str(self.input_shorter_side),
            "pixel_scale": json.dumps(1 / 255),
            "pixel_mean": json.dumps(list(self.pixel_mean)),
            "pixel_std": json.dumps(list(self.pixel_std)),
            "metric": self.metric,
            "embedding_dim": str(self.embedding_dim),
            "backbone": self.backbone,
            "dff_filter": self.dff_filter,
            "flip_feats": json.dumps(self.flip_feats),
            "checkpoint_sha256": self.checkpoint_sha256,
            "checkpoint_path": self.checkpoint_path,
            "opset": str(self.opset),
            "config": self.config,
        }

    @classmethod
    def from_metadata(cls, props: dict[str, str], path: str) -> OnnxModelInfo:
        """Parse :meth:`to_metadata`'s strings; :class:`OnnxModelError` naming ``path`` when they are not."""
        if props.get("format") != ONNX_FORMAT:
            raise OnnxModelError(
                f"{path} carries no reid-dff metadata (metadata_props format {props.get('format')!r}, "
                f"expected {ONNX_FORMAT!r}); only ONNX files written by the reid-dff exporter can be used"
            )
        if props.get("format_version") != str(ONNX_FORMAT_VERSION):
            raise OnnxModelError(
                f"{path} has reid-dff ONNX format version {props.get('format_version')}; this reid-dff reads "
                f"version {ONNX_FORMAT_VERSION}: export the model again"
            )
        try:
            return cls(
                input_size=(int(props["input_height"]), int(props["input_width"])),
                pixel_mean=[float(v) for v in json.loads(props["pixel_mean"])],
                pixel_std=[float(v) for v in json.loads(props["pixel_std"])],
                metric=props["metric"],
                embedding_dim=int(props["embedding_dim"]),
                backbone=props["backbone"],
                dff_filter=props["dff_filter"],
                flip_feats=bool(json.loads(props["flip_feats"])),
                checkpoint_sha256=props["checkpoint_sha256"],
                checkpoint_path=props["checkpoint_path"],
                opset=int(props["opset"]),
                config=props["config"],
                # Absent from files written before these keys existed: read as "stretch" (INPUT.STYLE is in "config").
                input_resize=props.get("input_resize", "stretch"),
                input_shorter_side=int(props.get("input_shorter_side", "0")),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise OnnxModelError(f"{path}: unreadable reid-dff metadata ({type(e).__name__}: {e})") from e

    def build_config(self, path: str) -> CfgNode:
        """The (mutable) config the model was exported with, from the stored YAML text."""
        try:
            return cfg_from_text(self.config, f"the 'config' metadata of {path}")
        except ConfigError as e:
            raise OnnxModelError(str(e)) from e

    def check_config(self, cfg: CfgNode, path: str) -> None:
        """Refuse a config whose input size, normalization or backbone differ from the exported graph's."""
        exported = self.build_config(path)
        changed = [key for key in FIXED_KEYS if _value(cfg, key) != _value(exported, key)]
        if changed:
            details = ", ".join(
                f"{k} {_value(cfg, k)!r} (exported: {_value(exported, k)!r})" for k in changed
            )
            raise ConfigError(
                f"{path} was exported for a fixed input and normalization; these settings differ: {details}. "
                "Export the model again with the settings wanted"
            )


def _value(cfg: CfgNode, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return list(node) if isinstance(node, (list, tuple)) else node


def read_onnx_info(path: str | os.PathLike) -> OnnxModelInfo:
    """The :class:`OnnxModelInfo` of an exported file (read through onnxruntime; the graph is not run)."""
    return _open_session(os.fspath(path), providers=["CPUExecutionProvider"], threads=1)[1]


def _open_session(path: str, providers: list[Any], threads: int) -> tuple[Any, OnnxModelInfo]:
    ort = import_deploy_module("onnxruntime", "running an ONNX model")
    if not os.path.isfile(path):
        raise OnnxModelError(f"ONNX model not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: onnxruntime's warnings about unused initializers are noise
    try:
        session = ort.InferenceSession(path, options, providers=providers)
    except Exception as e:  # noqa: BLE001 -- onnxruntime raises its own types for any unreadable file
        raise OnnxModelError(f"onnxruntime cannot load {path}: {e}") from e
    info = OnnxModelInfo.from_metadata(dict(session.get_modelmeta().custom_metadata_map), path)
    return session, info


def choose_providers(device: str | torch.device | None) -> list[Any]:
    """onnxruntime execution providers for ``device``: ``cpu``, ``cuda[:N]`` or ``auto``/``None``."""
    ort = import_deploy_module("onnxruntime", "running an ONNX model")
    name = str(device) if device is not None else "auto"
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if name == "cpu" or (name == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if name == "auto":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if name == "cuda" or name.startswith("cuda:"):
        if not has_cuda:
            raise OnnxModelError(
                f"device {name!r} needs onnxruntime's CUDAExecutionProvider, but this onnxruntime offers "
                f"{', '.join(available)} (the onnxruntime-gpu package has CUDA)"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise OnnxModelError(f"unknown device {name!r} for an ONNX model; expected cpu, cuda, cuda:N or auto")


class OnnxEmbeddingModel(nn.Module):
    """An exported ``.onnx`` embedding model run by onnxruntime: ``(B, 3, H, W) -> (B, D)`` float32.

    An ``nn.Module`` without parameters, so the evaluation's extraction loop runs it like the PyTorch
    model (eval mode, flip averaging); inputs may live on any device and outputs are CPU tensors.
    ``threads`` defaults to PyTorch's intra-op thread count, so both backends use the same cores.
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device | None = None, threads: int = 0):
        super().__init__()
        self.path = os.path.abspath(os.fspath(path))
        providers = choose_providers(device)
        self.session, self.info = _open_session(self.path, providers, threads or torch.get_num_threads())
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise OnnxModelError(
                f"{self.path} takes inputs {[i.name for i in inputs]}; a reid-dff embedding model takes one, "
                f"{INPUT_NAME!r}"
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = self.info.input_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, height, width):
            raise OnnxModelError(
                f"{os.path.basename(self.path)} takes (B, 3, {height}, {width}) images, got {tuple(images.shape)}"
            )
        batch = np.ascontiguousarray(images.detach().float().cpu().numpy())
        (embeddings,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return torch.from_numpy(np.asarray(embeddings, dtype=np.float32))

    def extra_repr(self) -> str:
        return f"{self.path}, backbone={self.info.backbone}, input={self.info.input_size}"
