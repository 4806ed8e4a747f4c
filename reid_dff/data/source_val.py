"""Held-out identities of the source domains, for model selection without looking at the targets.

With ``TEST.SELECTION source_val`` each source gives up ``DATASETS.SOURCE_VAL.NUM_IDS`` identities, drawn
from ``SEED`` and the source's position (the same ones in every run of that config), that the training set
never sees. Their images form one query/gallery split per source, as Market-style protocols do: per
identity, the first image (by path) of each camera is a query and the rest are gallery (a query keeps a
gallery match in another camera); an identity seen by one camera only is a gallery-only distractor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .datasets.base import DatasetOptionError, Sample

__all__ = ["SELECTION_RULES", "carve_source_val", "query_gallery", "selects_on_source_val"]

# TEST.SELECTION: which evaluation picks best.pth. "last": the last epoch's; "source_val": the best
# mean mAP on the sources' held-out identities. The targets never pick a model.
SELECTION_RULES = ("last", "source_val")


def selects_on_source_val(cfg: Any) -> bool:
    """Whether ``cfg`` holds out source identities for model selection (``TEST.SELECTION source_val``)."""
    return cfg.TEST.SELECTION == "source_val"


def carve_source_val(
    cfg: Any, spec: str, domain: int, material: Sequence[tuple[Sample, str]]
) -> tuple[list[tuple[Sample, str]], list[Sample]]:
    """Split one source's ``(sample, scope)`` training material into what trains and the held-out images.

    Without ``TEST.SELECTION source_val`` nothing is held out. The held-out identities are
    ``DATASETS.SOURCE_VAL.NUM_IDS`` of the source's (scope, pid) keys, drawn from ``(SEED, domain)``."""
    if not selects_on_source_val(cfg):
        return list(material), []
    keys = sorted({(scope, s.pid) for s, scope in material})
    num_ids = int(cfg.DATASETS.SOURCE_VAL.NUM_IDS)
    if not 2 <= num_ids <= len(keys) - 2:
        raise DatasetOptionError(
            f"DATASETS.SOURCE_VAL.NUM_IDS is {num_ids} but source {spec} has {len(keys)} training identities; "
            "hold out at least 2 and keep at least 2 for training"
        )
    rng = np.random.default_rng([int(cfg.SEED), domain])
    held = {keys[i] for i in rng.choice(len(keys), size=num_ids, replace=False)}
    kept = [(s, scope) for s, scope in material if (scope, s.pid) not in held]
    # Scopes keep raw pids apart (COMBINE_ALL): the held-out samples get one pid per (scope, pid) key.
    key_index = {key: i for i, key in enumerate(sorted(held))}
    val = [
        Sample(s.path, key_index[(scope, s.pid)], s.camid, domain)
        for s, scope in material
        if (scope, s.pid) in held
    ]
    return kept, val


def query_gallery(samples: Sequence[Sample]) -> tuple[list[Sample], list[Sample]]:
    """Market-style query/gallery of held-out images: per identity and camera the first image (by path)
    is a query, the rest gallery; a camera's first image stays in the gallery when no other camera of the
    identity would keep a gallery image to match it (and always for an identity seen by one camera)."""
    by_pid: dict[int, dict[int, list[Sample]]] = {}
    for sample in sorted(samples, key=lambda s: s.path):
        by_pid.setdefault(sample.pid, {}).setdefault(sample.camid, []).append(sample)
    query: list[Sample] = []
    gallery: list[Sample] = []
    for pid in sorted(by_pid):
        cameras = by_pid[pid]
        is_query = dict.fromkeys(cameras, True)
        for camid in sorted(cameras):
            others = sum(len(cameras[c]) - is_query[c] for c in cameras if c != camid)
            if others == 0:
                is_query[camid] = False
        for camid in sorted(cameras):
            images = cameras[camid]
            query += images[:1] if is_query[camid] else []
            gallery += images[1:] if is_query[camid] else images
    return query, gallery
