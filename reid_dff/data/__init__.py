"""Data: dataset parsers, protocol splits, multi-source training sets, samplers, transforms and loaders.

Imports are lazy (PEP 562): ``import reid_dff.data`` stays cheap and never pulls torch or the synthetic
generator until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_EXPORTS = {
    # datasets
    "DATASET_REGISTRY": "datasets",
    "DatasetLayoutError": "datasets",
    "DatasetOptionError": "datasets",
    "DatasetStatisticsWarning": "datasets",
    "ReIDDataset": "datasets",
    "Sample": "datasets",
    "SplitFileError": "datasets",
    "SplitStatistics": "datasets",
    "build_dataset": "datasets",
    "parse_dataset_spec": "datasets",
    "packaged_split_file": "datasets",
    "split_sha256": "datasets",
    # composition and loaders
    "TestSplit": "build",
    "TrainSet": "build",
    "all_samples": "build",
    "build_source_val_sets": "build",
    "build_test_loader": "build",
    "build_test_sets": "build",
    "build_train_loader": "build",
    "build_train_set": "build",
    # samplers, transforms, decoding
    "SAMPLER_REGISTRY": "samplers",
    "DomainBalancedIdentitySampler": "samplers",
    "InfiniteRandomSampler": "samplers",
    "RandomIdentitySampler": "samplers",
    "SamplerError": "samplers",
    "SamplerStateError": "samplers",
    "build_transforms": "transforms",
    "BadImageError": "io",
    "read_image": "io",
    # synthetic generators (reid_dff/data/synthetic/)
    "ensure_synthetic_data": "synthetic",
    "generate_synthetic": "synthetic",
    "ensure_synthetic": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
