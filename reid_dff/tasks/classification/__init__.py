"""Closed-set classification domain generalization (``MODEL.TASK classification``, e.g. Office-Home).

``task``: the ``ClassificationTask`` strategy; ``data``: sources' train/val splits and held-out targets;
``evaluation``: top-1 accuracy and the per-target report and tables. The model is
``reid_dff.modeling.ClassificationModel`` (backbone -> pooling -> linear), shared with other tasks.
"""

from .data import ClassificationData, build_classification_data
from .evaluation import (
    CLASSIFICATION_SCHEMA,
    evaluate_classification,
    evaluate_classification_targets,
    format_classification_markdown,
    format_leave_one_domain_out_table,
)
from .task import ClassificationTask, selection_metric

__all__ = [
    "CLASSIFICATION_SCHEMA",
    "ClassificationData",
    "ClassificationTask",
    "build_classification_data",
    "evaluate_classification",
    "evaluate_classification_targets",
    "format_classification_markdown",
    "format_leave_one_domain_out_table",
    "selection_metric",
]
