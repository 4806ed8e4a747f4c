"""``FeatureExtractor``: a trained model as a function from images to float32 ReID embeddings."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..config import CfgNode, ConfigError, cfg_from_text, setup_cfg
from ..data import Sample, build_test_loader, build_transforms, read_image
from ..evaluation.features import Features, extract_features, iter_feature_batches
from ..modeling import build_model, load_model_weights
from ..modeling.checkpoint import load_checkpoint
from ..modeling.pretrained import read_state_dict
from ..utils import resolve_device, sha256_file
from .features_file import FeaturesFileWriter
from .images import ImageList, parse_identity
from .onnx_model import OnnxEmbeddingModel, is_onnx_path

CONFIG_EXTENSIONS = (".yaml", ".yml")

ImageInput = str | os.PathLike | np.ndarray | torch.Tensor


class FeatureExtractor:
    """Embeddings of a trained reid-dff model, with the evaluation's test transforms and flip setting.

    ``FeatureExtractor("configs/x.yaml", opts=["MODEL.WEIGHTS", "model.pth"])``, a ``CfgNode`` with
    ``MODEL.WEIGHTS`` set, or ``FeatureExtractor("model.pth")`` (the config is rebuilt from the checkpoint's
    ``"cfg"`` YAML text). Calling it on image paths, ``(H, W, 3)`` uint8 RGB arrays (or one ``(N, H, W, 3)``
    array), or preprocessed ``(B, 3, H, W)`` tensors returns ``(N, D)`` float32 embeddings.

    ``FeatureExtractor("model.onnx")`` runs a file written by ``export_checkpoint`` with onnxruntime (the
    ``deploy`` extra): the config, hence the transforms and flip setting, comes from its metadata, and
    ``checkpoint_sha256`` is its source checkpoint's, so its features mix with the checkpoint's;
    ``onnx_sha256`` tells exports apart.
    """

    def __init__(
        self,
        config_or_checkpoint: str | os.PathLike | CfgNode,
        device: str | torch.device | None = None,
        opts: Sequence[str] = (),
        weights: str | os.PathLike | None = None,
    ):
        self.onnx_path = ""
        self.onnx_sha256 = ""
        if is_onnx_path(config_or_checkpoint) or is_onnx_path(weights):
            self._init_onnx(config_or_checkpoint, device, opts, weights)
            return
        cfg, weights_path, state, from_checkpoint = _resolve_source(config_or_checkpoint, opts, weights)
        cfg.freeze()
        self.cfg = cfg
        # A checkpoint remembers the device it was trained on; on another machine "auto" is the right default.
        self.device = resolve_device(
            str(device) if device else ("auto" if from_checkpoint else cfg.MODEL.DEVICE),
            setting="the device argument" if device else "MODEL.DEVICE",
        )
        # ImageNet initialization is pointless under trained weights, and its file may not exist here.
        self.model = build_model(cfg, num_classes=0, imagenet_init=False)
        # The identity classifier is a training device: embeddings never use it.
        load_model_weights(
            self.model,
            state,
            ignore_classifier=True,
            source=os.fspath(weights_path),
            cfg=cfg,
            checkpoint=weights_path,
        )
        self.model.to(self.device).eval()
        self.transform = build_transforms(cfg, is_train=False)
        self.checkpoint_path = os.path.abspath(weights_path)
        self.checkpoint_sha256 = sha256_file(weights_path)
        self.model_name = cfg.MODEL.BACKBONE
        self.metric = cfg.TEST.METRIC
        self.flip = bool(cfg.TEST.FLIP_FEATS)
        self.amp = bool(cfg.SOLVER.AMP)  # autocast on CUDA only, as the evaluation does
        self.batch_size = int(cfg.TEST.IMS_PER_BATCH)
        self._dim: int | None = None

    def _init_onnx(self, source, device, opts: Sequence[str], weights) -> None:
        """The onnxruntime backend: an exported file carries its config, so it is given alone."""
        if weights is not None and not (is_onnx_path(source) and os.fspath(source) == os.fspath(weights)):
            other = weights if is_onnx_path(source) else source
            described = "a config" if isinstance(other, CfgNode) else os.fspath(other)
            raise ConfigError(
                f"an ONNX model carries its own config and weights; give the .onnx file alone, not with {described}"
            )
        path = os.fspath(weights if weights is not None else source)
        model = OnnxEmbeddingModel(path, device=device)
        cfg = model.info.build_config(path)
        cfg.merge_from_list(opts)
        model.info.check_config(cfg, path)
        cfg.freeze()
        self.cfg = cfg
        self.model = model
        # onnxruntime takes numpy arrays from host memory whatever provider runs the graph.
        self.device = torch.device("cpu")
        self.transform = build_transforms(cfg, is_train=False)
        self.checkpoint_path = model.info.checkpoint_path
        self.checkpoint_sha256 = model.info.checkpoint_sha256
        self.onnx_path = model.path
        self.onnx_sha256 = sha256_file(path)
        self.model_name = cfg.MODEL.BACKBONE
        self.metric = cfg.TEST.METRIC
        self.flip = bool(cfg.TEST.FLIP_FEATS)
        self.amp = False
        self.batch_size = int(cfg.TEST.IMS_PER_BATCH)
        self._dim = model.info.embedding_dim

    @property
    def provenance(self) -> dict[str, str]:
        """What features record besides the checkpoint: the ONNX file and its SHA-256 (empty for PyTorch)."""
        return {"onnx_path": self.onnx_path, "onnx_sha256": self.onnx_sha256} if self.onnx_sha256 else {}

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        if self._dim is None:
            height, width = self.cfg.INPUT.SIZE_TEST
            probe = torch.zeros(1, 3, height, width)
            self._dim = int(self._embed([{"images": probe}]).shape[1])
        return self._dim

    @property
    def normalized(self) -> bool:
        """Whether the metric this model is evaluated with (``TEST.METRIC``) L2-normalizes features."""
        return self.metric == "cosine"

    def __call__(self, inputs: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        """``(N, D)`` float32 embeddings of paths, uint8 RGB arrays or ``(B, 3, H, W)`` tensors."""
        # Lazily: only one preprocessed batch is in memory at a time.
        batches = self._batches(inputs)
        first = next(batches, None)
        if first is None:
            raise ValueError("FeatureExtractor got no images")
        return self._embed(itertools.chain([first], batches))

    def extract_samples(self, samples: Sequence[Sample], progress: bool = False) -> Features:
        """Features of dataset samples through the evaluation's test loader (workers, bad-image policy)."""
        loader = self._loader(samples, progress)
        return extract_features(self.model, loader, self.device, flip=self.flip, amp=self.amp)

    def _loader(self, samples: Sequence[Sample], progress: bool):
        loader = build_test_loader(self.cfg, samples)
        if progress:
            from tqdm import tqdm

            from ..utils.progress import BarWithLogs

            loader = BarWithLogs(tqdm(loader, total=len(loader), desc="extracting", unit="batch"))
        return loader

    def preprocess(self, inputs: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """The model input ``(N, 3, H, W)`` of paths or uint8 RGB arrays (the test transforms)."""
        batches = [batch["images"] for batch in self._batches(inputs)]
        if not batches:
            raise ValueError("FeatureExtractor got no images")
        return torch.cat(batches)

    def extract_images(self, images: ImageList, progress: bool = False) -> Features:
        """The :class:`Features` of the images in ``images``; pids/camids from Market-style names, else -1."""
        return self.feature_set(image_samples(images), images.root, progress=progress)

    def save_feature_set(
        self, samples: Sequence[Sample], root: str, path: str | os.PathLike, progress: bool = False
    ) -> tuple[int, int]:
        """Extract ``samples`` straight into the features file ``path`` (what :meth:`feature_set` and
        ``save_features`` give, with one batch of features in memory at a time); returns ``(rows, dim)``."""
        header = Features(
            feats=np.zeros((0, 0), np.float32),
            paths=[],
            root=os.path.abspath(root),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
            checkpoint_path=self.checkpoint_path,
            metric=self.metric,
            extra=self.provenance,
        )
        with FeaturesFileWriter(path, len(samples), header) as writer:
            for batch in iter_feature_batches(
                self.model, self._loader(samples, progress), self.device, flip=self.flip, amp=self.amp
            ):
                writer.add(
                    batch.feats, [os.path.relpath(p, root) for p in batch.paths], batch.pids, batch.camids
                )
            if not writer.count:
                raise ValueError("the test loader yielded no images; check the images given")
            return writer.close()

    def feature_set(self, samples: Sequence[Sample], root: str, progress: bool = False) -> Features:
        """The :class:`Features` of dataset ``samples``, paths stored relative to ``root``."""
        features = self.extract_samples(samples, progress=progress)
        return Features(
            feats=_to_numpy(features.feats, np.float32),
            paths=[os.path.relpath(p, root) for p in features.paths],
            root=os.path.abspath(root),
            pids=_to_numpy(features.pids, np.int64),
            camids=_to_numpy(features.camids, np.int64),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
            checkpoint_path=self.checkpoint_path,
            metric=self.metric,
            extra=self.provenance,
        )

    # -- internals ----------------------------------------------------------
    def _embed(self, batches: Iterable[dict[str, Any]]) -> np.ndarray:
        features = extract_features(
            self.model, _with_dummy_labels(batches), self.device, flip=self.flip, amp=self.amp
        )
        return _to_numpy(features.feats, np.float32)

    def _batches(self, inputs: ImageInput | Sequence[ImageInput]) -> Iterator[dict[str, Any]]:
        if isinstance(inputs, torch.Tensor):
            yield from self._tensor_batches(inputs)
            return
        if isinstance(inputs, np.ndarray) and inputs.ndim == 4:
            inputs = list(inputs)
        elif isinstance(inputs, (str, os.PathLike, np.ndarray)):
            inputs = [inputs]
        pending: list[torch.Tensor] = []
        for position, item in enumerate(inputs):
            if isinstance(item, torch.Tensor):
                raise TypeError(
                    f"input {position} is a tensor inside a list; pass preprocessed tensors as one "
                    "(B, 3, H, W) tensor, or images as paths / uint8 arrays"
                )
            pending.append(self._preprocess(item, position))
            if len(pending) == self.batch_size:
                yield {"images": torch.stack(pending)}
                pending = []
        if pending:
            yield {"images": torch.stack(pending)}

    def _preprocess(self, item: str | os.PathLike | np.ndarray, position: int) -> torch.Tensor:
        if isinstance(item, (str, os.PathLike)):
            image = read_image(item)
        elif isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[2] != 3 or item.dtype != np.uint8:
                raise ValueError(
                    f"input {position}: an image array must be (H, W, 3) uint8 RGB (as read_image returns), "
                    f"got shape {item.shape} {item.dtype}"
                )
            image = item
        else:
            raise TypeError(
                f"input {position}: expected an image path, a (H, W, 3) uint8 array or a (B, 3, H, W) tensor, "
                f"got {type(item).__name__}"
            )
        return self.transform(image).as_subclass(torch.Tensor)

    def _tensor_batches(self, images: torch.Tensor) -> Iterator[dict[str, Any]]:
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                "a tensor input must be a preprocessed float (B, 3, H, W) batch (test transforms and "
                f"normalization applied), got {tuple(images.shape)} {images.dtype}"
            )
        for start in range(0, len(images), self.batch_size):
            yield {"images": images[start : start + self.batch_size]}


def image_samples(images: ImageList) -> list[Sample]:
    """Samples of the images of an :class:`ImageList`: pids/camids from Market-style names, else -1."""
    samples = []
    for rel_path in images.paths:
        identity = parse_identity(rel_path) or (-1, -1)
        samples.append(Sample(os.path.join(images.root, rel_path), identity[0], identity[1]))
    return samples


def _to_numpy(values: Any, dtype: type) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(values), dtype=dtype)


def _with_dummy_labels(batches: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Loader-shaped batches (``pids``, ``camids``, ``paths``) around bare image batches."""
    for batch in batches:
        count = len(batch["images"])
        yield {
            "images": batch["images"],
            "pids": torch.full((count,), -1, dtype=torch.long),
            "camids": torch.full((count,), -1, dtype=torch.long),
            "paths": [""] * count,
        }


def _resolve_source(
    source: str | os.PathLike | CfgNode, opts: Sequence[str], weights: str | os.PathLike | None
) -> tuple[CfgNode, str, dict, bool]:
    """(mutable cfg, weights path, model state dict, whether the config came from the checkpoint)."""
    checkpoint: dict | None = None
    if isinstance(source, CfgNode):
        cfg = source.clone().defrost()
        cfg.merge_from_list(opts)
    elif os.fspath(source).lower().endswith(CONFIG_EXTENSIONS):
        cfg = setup_cfg(os.fspath(source), opts, freeze=False)
    else:
        path = os.fspath(source)
        checkpoint = load_checkpoint(path)
        cfg = _cfg_from_checkpoint(checkpoint, path)
        cfg.merge_from_list(opts)
        cfg.MODEL.WEIGHTS = path
    if weights:
        cfg.MODEL.WEIGHTS = os.fspath(weights)
        checkpoint = None
    if not cfg.MODEL.WEIGHTS:
        raise ConfigError(
            "FeatureExtractor needs trained weights: set MODEL.WEIGHTS (e.g. opts=['MODEL.WEIGHTS', "
            "'output/x/model_final.pth'] or weights=...), or pass the checkpoint path itself"
        )
    what = "reid-dff checkpoint (MODEL.WEIGHTS)"
    state = read_state_dict(cfg.MODEL.WEIGHTS if checkpoint is None else checkpoint, what=what)
    return cfg, cfg.MODEL.WEIGHTS, state, checkpoint is not None


def _cfg_from_checkpoint(checkpoint: dict, path: str) -> CfgNode:
    """The configuration a checkpoint was trained with, from its ``"cfg"`` YAML text."""
    text = checkpoint.get("cfg")
    if not isinstance(text, str):
        raise ConfigError(
            f"{path} holds no 'cfg' entry (the YAML text of the training config), so the model cannot be "
            "rebuilt from it alone; pass the config file and set MODEL.WEIGHTS to this file"
        )
    return cfg_from_text(text, f"the 'cfg' entry of {path}")
