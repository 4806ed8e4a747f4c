"""The synthetic generator's domains (``reid_dff.data.synthetic``), read with the Market-style parser."""

from __future__ import annotations

import os
from typing import Any

from .base import DATASET_REGISTRY, DatasetOptionError
from .market1501 import MarketStyleDataset

__all__ = ["SyntheticDomain"]


@DATASET_REGISTRY.register("synthetic")
class SyntheticDomain(MarketStyleDataset):
    """Domain ``domain`` of the generated data: ``<root>/synthetic/domain{k}/`` in the Market-1501 layout.

    Spec form ``synthetic:k``. Generate it with ``reid_dff.data.synthetic.generate_synthetic`` (or let
    ``build_train_set`` call ``ensure_synthetic``). No published statistics.
    """

    name = "synthetic"
    root_folders = ("synthetic",)
    positional_option = "domain"
    junk_pids = frozenset({0, -1})
    expected_tree = """
<root>/synthetic/manifest.json
<root>/synthetic/domain{k}/
    bounding_box_train/0001_c1s1_000000_01.jpg ...
    query/ ...   bounding_box_test/ ...
(generate with reid_dff.data.synthetic.generate_synthetic or ensure_synthetic(cfg))
"""

    def __init__(self, root: str, domain: int = 0, **kwargs: Any):
        if isinstance(domain, bool) or not isinstance(domain, int) or domain < 0:
            raise DatasetOptionError(
                f"synthetic domain must be an int >= 0 (spec 'synthetic:k'), got {domain!r}"
            )
        self.domain = domain
        super().__init__(root, **kwargs)

    def data_dir_candidates(self) -> list[str]:
        folder = os.path.join(self.root, "synthetic")
        path = os.path.join(folder, f"domain{self.domain}")
        if os.path.isdir(folder) and not os.path.isdir(path):
            present = sorted(
                int(name[len("domain") :])
                for name in os.listdir(folder)
                if name.startswith("domain") and name[len("domain") :].isdigit()
            )
            if present:
                raise DatasetOptionError(
                    f"synthetic:{self.domain}: {folder} holds domains {', '.join(map(str, present))} only "
                    "(DATASETS.SYNTHETIC.NUM_DOMAINS); use one of them or generate more domains"
                )
        return [path]
