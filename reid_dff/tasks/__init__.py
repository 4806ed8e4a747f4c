"""Tasks as strategies: ``reid`` (retrieval, DG ReID), ``classification`` (closed-set DG, Office-Home) and
``imagenet`` (large-scale classification pre-training, stage 1).

``build_task(cfg)`` returns the ``Task`` of ``cfg.MODEL.TASK``; ``reid_dff.engine`` trains and evaluates
through it. A new task is one ``Task`` subclass registered in ``TASK_REGISTRY``.
"""

from .base import TASK_REGISTRY, Task, build_task
from .classification import ClassificationTask
from .imagenet import ImageNetTask
from .reid import ReIDTask

__all__ = ["TASK_REGISTRY", "ClassificationTask", "ImageNetTask", "ReIDTask", "Task", "build_task"]
