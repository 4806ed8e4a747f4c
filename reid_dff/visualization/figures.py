"""The paper's pictures from a model: DFF frequency masks beside spectra, activation overlays, ranked lists.

Masks and activations are captured with forward hooks, so the models need no visualization code: every
``FrequencyMask`` module receives the stacked spectrum ``(B, 2C, H, W//2+1)`` and returns the mask
``(B, 1, H, W//2+1)``; any named module's output ``(B, C, h, w)`` gives an activation map (channel mean).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from ..data.io import read_image
from ..errors import ReidDffError
from ..modeling.backbones.filters import FrequencyMask
from .drawing import (
    BLUE,
    add_border,
    centre_rfft_map,
    colorize,
    log_magnitude,
    overlay_heatmap,
    put_label,
    ranked_list_image,
    resize,
    tile,
)
from .html import resolve_report_path


class FigureInputError(ReidDffError):
    """A model or layer that cannot give the requested picture (no DFF mask, unknown layer name)."""


@dataclass
class MaskCapture:
    """One DFF layer's masks ``(B, H, Wf)`` and the log-magnitude spectra ``(B, H, Wf)`` they filtered."""

    name: str
    masks: np.ndarray
    spectra: np.ndarray


@contextlib.contextmanager
def _hooks(modules: Sequence[tuple[str, nn.Module]], hook) -> Iterator[None]:
    handles = [module.register_forward_hook(hook(name)) for name, module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def frequency_mask_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``FrequencyMask`` in ``model``, in forward order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, FrequencyMask)]


@torch.no_grad()
def capture_frequency_masks(model: nn.Module, images: torch.Tensor) -> list[MaskCapture]:
    """Run ``model`` (eval mode) on ``(B, 3, H, W)`` images and collect each DFF layer's masks and spectra."""
    modules = frequency_mask_modules(model)
    if not modules:
        raise FigureInputError(
            f"{type(model).__name__} has no FrequencyMask module: frequency masks exist only in DFF backbones "
            "(MODEL.BACKBONE dff_resnet*, MODEL.DFF.FILTER ins_spatial)"
        )
    captured: dict[str, MaskCapture] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            spectrum = inputs[0].detach().float().cpu().numpy()
            captured[name] = MaskCapture(
                name,
                output.detach().float().cpu().numpy()[:, 0],
                np.stack([log_magnitude(s) for s in spectrum]),
            )

        return record

    was_training = model.training
    model.eval()
    try:
        with _hooks(modules, hook):
            model(images)
    finally:
        model.train(was_training)
    return [captured[name] for name, _ in modules if name in captured]


@torch.no_grad()
def capture_activation(model: nn.Module, images: torch.Tensor, layer: str = "backbone") -> np.ndarray:
    """Channel-mean ``(B, h, w)`` of the output of ``model``'s submodule ``layer`` for ``(B, 3, H, W)`` images."""
    modules = dict(model.named_modules())
    if layer not in modules:
        candidates = [n for n in modules if n.count(".") <= 1 and n]
        raise FigureInputError(
            f"{type(model).__name__} has no submodule {layer!r}; its modules include {candidates[:12]}"
        )
    captured: list[torch.Tensor] = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                raise FigureInputError(
                    f"{layer} outputs {type(output).__name__}; expected a (B, C, h, w) feature map"
                )
            captured.append(output.detach().float().mean(dim=1).cpu())

        return record

    was_training = model.training
    model.eval()
    try:
        with _hooks([(layer, modules[layer])], hook):
            model(images)
    finally:
        model.train(was_training)
    return captured[0].numpy()


def _short_name(name: str) -> str:
    # "backbone.layer2.1.conv2.g2g.fu.spectrum_filter.mask" -> "layer2.1.conv2"
    parts = name.split(".")
    parts = parts[1:] if parts and parts[0] == "backbone" else parts
    return ".".join(parts[:3]) if len(parts) > 3 else name


def _upscale(rgb: np.ndarray, height: int) -> np.ndarray:
    # Nearest neighbour: each frequency bin stays a visible block instead of being smoothed away.
    scale = max(1, round(height / rgb.shape[0]))
    return cv2.resize(rgb, (rgb.shape[1] * scale, rgb.shape[0] * scale), interpolation=cv2.INTER_NEAREST)


def frequency_mask_figure(
    image: np.ndarray,
    captures: Sequence[MaskCapture],
    sample: int = 0,
    cell_height: int = 128,
    per_row: int = 4,
) -> np.ndarray:
    """The input image, then per DFF layer its centred log-magnitude spectrum beside its centred mask.

    Both maps are ``fftshift``-ed along H only (``rfft2`` keeps the non-negative horizontal frequencies):
    the zero frequency is at the middle of the left edge, high frequencies towards the right and the top
    and bottom edges. The mask is min-max scaled (its range is printed above the panel); the spectrum is
    scaled between its 2nd and 98th percentiles, so the dominant zero frequency does not flatten the rest.
    """
    if not captures:
        raise ValueError("no DFF layer was captured")
    cells = []
    for capture in captures:
        spectrum_values = centre_rfft_map(capture.spectra[sample])
        low, high = np.percentile(spectrum_values, [2, 98])
        spectrum = colorize(spectrum_values, vmin=low, vmax=high, colormap=cv2.COLORMAP_VIRIDIS)
        mask_values = centre_rfft_map(capture.masks[sample])
        pair = tile(
            [
                [
                    put_label(_upscale(spectrum, cell_height), "log|F|"),
                    put_label(_upscale(colorize(mask_values), cell_height), "mask"),
                ]
            ],
            gap=2,
        )
        title = f"{_short_name(capture.name)}"
        value_range = f"mask {mask_values.min():.2f}..{mask_values.max():.2f}"
        cells.append(put_label(put_label(pair, value_range), title))
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    header = put_label(add_border(resize(image, (cell_height, cell_height // 2)), BLUE, 2), "input")
    return tile([[header], *rows], gap=6)


def activation_figure(
    images: Sequence[np.ndarray],
    activations: Sequence[tuple[str, np.ndarray]],
    size: tuple[int, int] = (256, 128),
    alpha: float = 0.5,
) -> np.ndarray:
    """One row per image: the image, then an overlay per model (e.g. ``[("Base", (B, h, w)), ("DFF", ...)]``)."""
    for label, maps in activations:
        if len(maps) != len(images):
            raise ValueError(f"{label}: {len(maps)} activation maps for {len(images)} images")
    rows = []
    for i, image in enumerate(images):
        shown = resize(image, size)
        row = [put_label(shown, "image")]
        row += [put_label(overlay_heatmap(shown, maps[i], alpha), label) for label, maps in activations]
        rows.append(row)
    return tile(rows, gap=4)


def ranked_lists_figure(
    report: dict,
    max_queries: int = 8,
    size: tuple[int, int] = (128, 64),
) -> np.ndarray:
    """Rows of query + top-k (green = right, red = wrong, grey = unknown) from a search report's JSON.

    Every path is checked to exist and to stay inside its root (``query_root`` / ``gallery_root``).
    """
    if not isinstance(report, dict) or not isinstance(report.get("queries"), list):
        raise FigureInputError(
            "expected a search report: a JSON object with a 'queries' list, 'query_root' and 'gallery_root'"
        )
    queries = report["queries"][:max_queries]
    if not queries:
        raise FigureInputError("the search report holds no queries")
    rows = []
    for position, query in enumerate(queries):
        try:
            query_path, results = query["query"], list(query["results"])
            roots = report["query_root"], report["gallery_root"]
            result_paths = [r["path"] for r in results]
            matches = [r["match"] for r in results]
            distances = [r["distance"] for r in results]
        except (KeyError, TypeError) as e:
            raise FigureInputError(
                f"query {position} of the search report lacks {e} (each query needs 'query' and 'results' "
                "with 'path', 'match', 'distance'; the report needs 'query_root' and 'gallery_root')"
            ) from None
        query_image = read_image(resolve_report_path(roots[0], query_path, "query"))
        gallery = [read_image(resolve_report_path(roots[1], p, "gallery")) for p in result_paths]
        if not gallery:
            gallery, matches, distances = [np.full((*size, 3), 255, np.uint8)], [None], [float("nan")]
        rows.append([ranked_list_image(query_image, gallery, matches, size=size, distances=distances)])
    legend = put_label(
        np.full((1, 420, 3), 255, np.uint8),
        "blue: query   green: same identity   red: another identity   grey: unknown",
    )
    return tile([[legend], *rows], gap=4)


def mask_figures(model: nn.Module, images: Sequence[np.ndarray], batch: torch.Tensor) -> list[np.ndarray]:
    """One :func:`frequency_mask_figure` per image: ``images`` (uint8 RGB) and their model input ``batch``."""
    if len(images) != len(batch):
        raise ValueError(f"{len(images)} images but a batch of {len(batch)}")
    captures = capture_frequency_masks(model, batch)
    return [frequency_mask_figure(image, captures, sample=i) for i, image in enumerate(images)]


def activation_comparison(
    models: Sequence[tuple[str, nn.Module, torch.Tensor]],
    images: Sequence[np.ndarray],
    layer: str = "backbone",
    size: tuple[int, int] = (256, 128),
) -> np.ndarray:
    """Images beside the activation overlays of several ``(label, model, model input batch)``, side by side."""
    maps = [(label, capture_activation(model, batch, layer)) for label, model, batch in models]
    return activation_figure(images, maps, size=size)
