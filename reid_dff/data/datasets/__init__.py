"""Dataset parsers, one small class per dataset, registered by name in ``DATASET_REGISTRY``."""

from . import (  # noqa: F401  (each module registers its dataset)
    class_folder,
    cuhk02,
    cuhk03,
    cuhksysu,
    grid,
    ilids,
    image_folder,
    imagenet,
    market1501,
    msmt17,
    officehome,
    prid,
    synthetic,
    viper,
)
from .base import (
    DATASET_REGISTRY,
    TEST_SCOPE,
    TRAIN_SCOPE,
    DatasetLayoutError,
    DatasetOptionError,
    DatasetStatisticsWarning,
    ReIDDataset,
    Sample,
    SplitStatistics,
    build_dataset,
    parse_dataset_spec,
    split_statistics,
)
from .inspection import DatasetInspection, format_inspection, inspect_root
from .protocol_splits import (
    SplitFileError,
    generate_splits,
    load_split_file,
    packaged_split_file,
    split_sha256,
)

__all__ = [
    "DATASET_REGISTRY",
    "DatasetInspection",
    "DatasetLayoutError",
    "DatasetOptionError",
    "DatasetStatisticsWarning",
    "ReIDDataset",
    "Sample",
    "SplitFileError",
    "SplitStatistics",
    "TEST_SCOPE",
    "TRAIN_SCOPE",
    "build_dataset",
    "format_inspection",
    "generate_splits",
    "inspect_root",
    "load_split_file",
    "packaged_split_file",
    "parse_dataset_spec",
    "split_sha256",
    "split_statistics",
]
