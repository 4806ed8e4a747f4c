"""Export a trained embedding model to ONNX, checked against PyTorch with onnxruntime before it is written.

DFF's spectral transform (``rfft2``/``irfft2`` over stacked real/imaginary channels) defeats the
TorchScript-based exporter, which fails inside the JIT; the dynamo-based exporter (``torch.export`` ->
ONNX through onnxscript) translates it to ``DFT``, natively at opset 20, and through onnxscript's version
converter at 18 and 19. The graph has a dynamic batch axis and a fixed ``(H, W)``.

:func:`export_checkpoint` builds the model exactly as ``FeatureExtractor`` does (eval mode, the post-BNNeck
embedding), exports it, stores :class:`~.onnx_model.OnnxModelInfo` in the file's metadata, runs the bytes
in onnxruntime on a random batch of another size than the export's, and writes the file atomically only
when the outputs agree within the tolerance: a file at ``output`` is always one that passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.transforms import eval_resize
from ..errors import ReidDffError
from ..utils import atomic_write_bytes
from .onnx_model import INPUT_NAME, OUTPUT_NAME, OnnxModelInfo, import_deploy_module, is_onnx_path

__all__ = [
    "DEFAULT_OPSET",
    "ExportReport",
    "OnnxExportError",
    "OnnxParityError",
    "export_checkpoint",
    "onnx_bytes",
    "onnxruntime_outputs",
    "relative_error",
]

# torch's exporter writes opset 20 (DFT with its axis as an input) and converts down to 18. Below 18 the
# conversion fails (the Reduce ops' axes inputs) and the exporter keeps the newer opset without an error,
# so such a request is refused up front and every result's opset is checked.
DEFAULT_OPSET = 20
MIN_OPSET = 18
DEFAULT_TOLERANCE = 1e-4
EXPORT_BATCH = 2  # >= 2, or torch.export specializes the batch axis to the example's 1
CHECK_BATCH = 3  # another size than the export's: the check also proves the batch axis is dynamic


class OnnxExportError(ReidDffError):
    """A model cannot be exported to ONNX with the settings given (opset, input size)."""


class OnnxParityError(ReidDffError):
    """The exported graph's onnxruntime outputs differ from PyTorch's by more than the tolerance."""


@dataclass
class ExportReport:
    """What :func:`export_checkpoint` wrote and how closely onnxruntime reproduces PyTorch."""

    path: str
    info: OnnxModelInfo
    onnx_sha256: str
    relative_error: float
    check_batch: int
    seconds: float

    def summary(self) -> str:
        """One line: backbone, input, embedding size, parity, file."""
        info = self.info
        return (
            f"{info.backbone} ({info.dff_filter}) at {info.input_size[0]}x{info.input_size[1]} -> "
            f"{info.embedding_dim}-d embeddings, opset {info.opset}; onnxruntime vs PyTorch on a batch of "
            f"{self.check_batch}: {self.relative_error:.1e} relative; {self.path} "
            f"(sha256 {self.onnx_sha256[:12]}..., {self.seconds:.0f} s)"
        )


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max |actual - expected| / max |expected|`` (inf when the shapes differ)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    diff = float(np.abs(actual - expected).max()) if expected.size else 0.0
    return diff / scale if scale > 0 else diff


def check_opset(opset: int) -> None:
    """Refuse an opset the exporter cannot write for these models (before any model is loaded)."""
    if opset < MIN_OPSET:
        raise OnnxExportError(
            f"opset {opset} is older than the exporter can write for these models (DFT, Reduce ops); "
            f"expected an opset of at least {MIN_OPSET}"
        )


def onnx_bytes(
    module: nn.Module,
    example: torch.Tensor,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """The serialized ONNX graph of ``module`` (eval mode) on inputs shaped like ``example`` ``(B, ...)``,
    with a dynamic batch axis, input ``images`` and output ``embeddings``, and ``metadata`` as its
    ``metadata_props``."""
    import_deploy_module("onnx", "ONNX export")
    import_deploy_module("onnxscript", "ONNX export")  # the dynamo exporter's op library
    check_opset(opset)
    if example.shape[0] < 2:
        raise ValueError(f"the export example needs a batch of at least 2, got {tuple(example.shape)}")
    was_training = module.training
    module.eval()
    batch = torch.export.Dim("batch", min=1)
    # The exporter prints its progress on stdout and warns about internals; a tool shows its own summary.
    try:
        with (
            torch.no_grad(),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                verbose=False,
                report=False,
            )
    except Exception as e:  # noqa: BLE001 -- the exporter raises many types; the model and size are the fact
        raise OnnxExportError(
            f"torch.onnx.export (dynamo, opset {opset}) failed for {type(module).__name__} on input "
            f"{tuple(example.shape)}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    finally:
        module.train(was_training)
    if program is None:
        raise OnnxExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    written = next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise OnnxExportError(f"the exporter wrote opset {written} where opset {opset} was asked for")
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "reid-dff"
    return proto.SerializeToString()


def onnxruntime_outputs(model_bytes: bytes, images: np.ndarray, threads: int = 0) -> np.ndarray:
    """Run serialized ONNX bytes on ``images`` with onnxruntime's CPU provider; the first output."""
    ort = import_deploy_module("onnxruntime", "checking an ONNX export")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {input_name: np.ascontiguousarray(images, np.float32)})[0])


def check_parity(
    model_bytes: bytes,
    module: nn.Module,
    input_shape: Sequence[int],
    batch: int = CHECK_BATCH,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> float:
    """Relative error of onnxruntime vs ``module`` on a seeded random ``(batch, *input_shape)`` input;
    :class:`OnnxParityError` when it exceeds ``tolerance``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, *input_shape, generator=generator)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module(images).float().cpu().numpy()
    finally:
        module.train(was_training)
    error = relative_error(onnxruntime_outputs(model_bytes, images.numpy()), expected)
    if not error <= tolerance:  # also catches NaN
        raise OnnxParityError(
            f"onnxruntime's embeddings differ from PyTorch's by {error:.2e} relative (max |diff| / max |PyTorch|) "
            f"on a random batch of {batch} x {tuple(input_shape)}; the tolerance is {tolerance:g}"
        )
    return error


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    input_size: Sequence[int] | None = None,
    opset: int = DEFAULT_OPSET,
    opts: Sequence[str] = (),
    tolerance: float = DEFAULT_TOLERANCE,
    check_batch: int = CHECK_BATCH,
) -> ExportReport:
    """Export the embedding model of a reid-dff checkpoint to ``output`` (``.onnx``), parity-checked.

    ``input_size`` ``(H, W)`` defaults to the checkpoint's ``INPUT.SIZE_TEST``; ``opts`` are config
    overrides as for ``FeatureExtractor`` (``TEST.FLIP_FEATS`` is recorded, not part of the graph).
    Nothing is written unless onnxruntime's outputs on a random batch of ``check_batch`` images agree
    with PyTorch's within ``tolerance`` (relative); an existing ``output`` is then replaced atomically.
    """
    from .extractor import FeatureExtractor  # the same model, config and checkpoint reading as extraction

    if is_onnx_path(checkpoint):
        raise OnnxExportError(
            f"{os.fspath(checkpoint)} is an ONNX file already; export reads a reid-dff checkpoint"
        )
    check_opset(int(opset))
    for package in ("onnx", "onnxscript", "onnxruntime"):  # before minutes of work, not after
        import_deploy_module(package, "ONNX export")
    if check_batch == EXPORT_BATCH:
        raise ValueError(f"check_batch must differ from the export's batch of {EXPORT_BATCH}")
    start = time.perf_counter()
    opts = list(opts)
    if input_size is not None:
        height, width = (int(v) for v in input_size)
        if height < 1 or width < 1:
            raise OnnxExportError(f"the input size must be positive, got {height}x{width}")
        opts += ["INPUT.SIZE_TEST", f"[{height}, {width}]"]
    extractor = FeatureExtractor(checkpoint, device="cpu", opts=opts)
    cfg, model = extractor.cfg, extractor.model
    height, width = (int(v) for v in cfg.INPUT.SIZE_TEST)
    resize_mode, shorter_side = eval_resize(cfg)
    example = torch.randn(EXPORT_BATCH, 3, height, width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        dim = int(model(example).shape[1])
    info = OnnxModelInfo(
        input_size=(height, width),
        pixel_mean=[float(v) for v in cfg.INPUT.PIXEL_MEAN],
        pixel_std=[float(v) for v in cfg.INPUT.PIXEL_STD],
        metric=str(cfg.TEST.METRIC),
        embedding_dim=dim,
        backbone=str(cfg.MODEL.BACKBONE),
        dff_filter=str(getattr(getattr(model, "backbone", None), "filter_name", "none")),
        flip_feats=bool(cfg.TEST.FLIP_FEATS),
        checkpoint_sha256=extractor.checkpoint_sha256,
        checkpoint_path=extractor.checkpoint_path,
        opset=int(opset),
        config=cfg.dump(),
        input_resize=resize_mode,
        input_shorter_side=shorter_side,
    )
    data = onnx_bytes(model, example, opset, info.to_metadata())
    error = check_parity(data, model, (3, height, width), batch=check_batch, tolerance=tolerance)
    atomic_write_bytes(output, data)
    return ExportReport(
        path=os.path.abspath(os.fspath(output)),
        info=info,
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        relative_error=error,
        check_batch=check_batch,
        seconds=time.perf_counter() - start,
    )
