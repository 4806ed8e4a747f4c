"""Tasks as strategies: ``reid`` (retrieval, DG ReID) and ``classification`` (closed-set DG, Office-Home).

``build_task(cfg)`` returns the ``Task`` of ``cfg.MODEL.TASK``; ``reid_dff.engine`` trains and evaluates
through it. A new task is one ``Task`` subclass registered in ``TASK_REGISTRY``.
"""

from .base import TASK_REGISTRY, Task, build_task
from .classification import ClassificationTask
from .reid import ReIDTask

__all__ = ["TASK_REGISTRY", "ClassificationTask", "ReIDTask", "Task", "build_task"]
