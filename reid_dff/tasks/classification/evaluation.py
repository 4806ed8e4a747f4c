"""Closed-set classification accuracy: a model over a loader, and the per-target report of a DG run.

The report is a JSON-ready dict (schema ``CLASSIFICATION_SCHEMA``, documented in docs/officehome.md):
accuracy on each source's held-out val split (model selection) and on every image of each target. It is
written with the same ``attach_run_info`` / ``write_results`` as the ReID report.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ...utils import git_revision

__all__ = [
    "CLASSIFICATION_SCHEMA",
    "accuracy_of",
    "evaluate_classification",
    "evaluate_classification_targets",
    "format_classification_markdown",
    "format_leave_one_domain_out_table",
]

logger = logging.getLogger(__name__)

CLASSIFICATION_SCHEMA = "reid_dff.evaluation.classification/1"


def evaluate_classification(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device | str,
    amp: bool = True,
    topk: Sequence[int] = (1,),
) -> dict[str, Any]:
    """Top-1 accuracy of ``model`` (eval mode returns ``(B, N)`` logits) over ``{"images", "pids"}`` batches.

    ``pids`` are class indices. Returns ``{"top1": fraction in [0, 1], "num_correct", "num_images"}``;
    each further ``k`` of ``topk`` adds ``"top<k>"`` and ``"num_correct_top<k>"`` (the label among the
    ``k`` highest logits; with fewer than ``k`` classes every image counts). ``amp`` enables autocast on
    CUDA only; the model's train/eval mode is restored.
    """
    device = torch.device(device)
    use_amp = amp and device.type == "cuda"
    extra = sorted({int(k) for k in topk} - {1})
    if any(k < 1 for k in extra):
        raise ValueError(f"topk entries must be >= 1, got {list(topk)}")
    was_training = model.training
    model.eval()
    correct = total = 0
    correct_k = dict.fromkeys(extra, 0)
    try:
        with torch.inference_mode():
            for batch in loader:
                if "images" not in batch:
                    continue  # every image of the batch was unreadable and skipped (counted by the loader)
                images = batch["images"].to(device, non_blocking=True)
                labels = torch.as_tensor(batch["pids"]).to(device).reshape(-1)
                with torch.autocast("cuda") if use_amp else contextlib.nullcontext():
                    logits = model(images)
                if (
                    not isinstance(logits, torch.Tensor)
                    or logits.ndim != 2
                    or logits.shape[0] != images.shape[0]
                ):
                    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                    raise ValueError(
                        f"the model returned {shape} for a batch of {images.shape[0]} images in eval mode; "
                        "accuracy needs (B, num_classes) logits (build it with MODEL.TASK classification)"
                    )
                if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
                    raise ValueError(
                        f"class labels in [{int(labels.min())}, {int(labels.max())}] do not fit the model's "
                        f"{logits.shape[1]} classes; the checkpoint was trained on another class list"
                    )
                correct += int((logits.argmax(dim=1) == labels).sum())
                if extra:
                    ranked = logits.topk(min(extra[-1], logits.shape[1]), dim=1).indices
                    hits = ranked == labels[:, None]
                    for k in extra:
                        correct_k[k] += int(hits[:, :k].any(dim=1).sum())
                total += labels.numel()
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("the loader yielded no images to classify; check the domain's class folders")
    result: dict[str, Any] = {"top1": correct / total, "num_correct": correct, "num_images": total}
    for k, n in correct_k.items():
        result[f"top{k}"] = n / total
        result[f"num_correct_top{k}"] = n
    return result


def accuracy_of(
    cfg: Any, model: nn.Module, device: torch.device | str, samples: Sequence[Any], topk: Sequence[int] = (1,)
) -> dict[str, Any]:
    """:func:`evaluate_classification` over ``samples`` with the test transforms; adds ``num_skipped``."""
    from ...data import build_test_loader  # the image pipeline only when evaluating real data

    loader = build_test_loader(cfg, samples)
    result = evaluate_classification(model, loader, device, amp=cfg.SOLVER.AMP, topk=topk)
    result["num_skipped"] = len(samples) - result["num_images"]
    return result


def evaluate_classification_targets(
    cfg: Any, model: nn.Module, device: torch.device | str, data: Any = None
) -> dict[str, Any]:
    """Accuracy on each source's val split and on each target of ``cfg`` (``data``: a prebuilt
    ``ClassificationData``, else built from ``cfg``); the report dict (``config``/``checkpoint`` left None)."""
    if data is None:
        from .data import build_classification_data

        data = build_classification_data(cfg)
    source_val = {
        spec: accuracy_of(cfg, model, device, samples) for spec, samples in data.val.items() if samples
    }
    targets = {}
    for spec, samples in data.targets.items():
        logger.info("evaluating %s: %d images", spec, len(samples))
        targets[spec] = accuracy_of(cfg, model, device, samples)
    return {
        "schema": CLASSIFICATION_SCHEMA,
        "task": "classification",
        "sources": list(data.train.names),
        "num_classes": len(data.classes),
        # Model selection uses the sources only: the mean of the per-source val accuracies (None: no val split).
        "source_val": source_val,
        "source_val_mean": {"top1": float(np.mean([r["top1"] for r in source_val.values()]))}
        if source_val
        else None,
        "targets": targets,
        "mean": {"top1": float(np.mean([r["top1"] for r in targets.values()]))},
        "git_revision": git_revision(),
        "config": None,
        "checkpoint": None,
    }


def _percent(value: float) -> str:
    return f"{100.0 * value:.1f}"


def format_classification_markdown(report: Mapping[str, Any]) -> str:
    """The report as a Markdown table: top-1 (%) per target and their mean, plus the model-selection column
    when the report has a ``selected`` entry (the evaluation at the best source-val accuracy)."""
    selected = report.get("selected")
    val = report.get("source_val_mean")
    checkpoint = report.get("checkpoint") or {}
    header = [
        f"sources: {', '.join(report['sources'])}; source val top1: {_percent(val['top1']) if val else 'n/a (no val split)'}"
        + (f"; checkpoint sha256 {checkpoint['sha256'][:12]}" if checkpoint.get("sha256") else ""),
        "",
    ]
    columns = ["target", "images", "top1 (last)"]
    if selected:
        columns.append(f"top1 (selected: epoch {selected['epoch']})")
    lines = header + ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    for name, target in report["targets"].items():
        cells = [name, str(target["num_images"]), _percent(target["top1"])]
        if selected:
            cells.append(_percent(selected["targets"][name]["top1"]))
        lines.append("| " + " | ".join(cells) + " |")
    mean = ["**mean**", "", _percent(report["mean"]["top1"])]
    if selected:
        mean.append(_percent(selected["mean"]["top1"]))
    lines.append("| " + " | ".join(mean) + " |")
    return "\n".join(lines)


def format_leave_one_domain_out_table(runs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """``{model: {task: report}}`` of leave-one-domain-out runs -> a Markdown table, one column per held-out
    target and the average: top-1 (%) at the epoch selected on source val, the last epoch's in parentheses."""
    targets: list[str] = []
    for reports in runs.values():
        for report in reports.values():
            targets += [t for t in report["targets"] if t not in targets]
    short = [t.split(":", 1)[-1] for t in targets]
    lines = ["| model | " + " | ".join(short) + " | average |", "|---|" + "---:|" * (len(targets) + 1)]
    for model, reports in runs.items():
        selected, last = {}, {}
        for report in reports.values():
            chosen = report.get("selected") or report
            for name, target in report["targets"].items():
                last[name] = target["top1"]
                selected[name] = chosen["targets"][name]["top1"]
        cells = [f"{_percent(selected[t])} ({_percent(last[t])})" if t in selected else "-" for t in targets]
        complete = all(t in selected for t in targets)
        average = (
            f"{_percent(float(np.mean([selected[t] for t in targets])))} "
            f"({_percent(float(np.mean([last[t] for t in targets])))})"
            if complete
            else "-"
        )
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {average} |")
    return "\n".join(lines)
