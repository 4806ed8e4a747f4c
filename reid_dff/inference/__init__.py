"""Inference: embeddings from a trained model (``FeatureExtractor``) and FAISS gallery search (``GalleryIndex``)."""

from .features_file import FeaturesFileError, load_features, save_features
from .images import ImageList, collect_images, parse_identity
from .index import GalleryIndex, IndexCompatibilityError, SearchResult
from .index_format import IndexFormatError, UnsafeIndexPathError, resolve_inside_root
from .index_types import INDEX_TYPES, IndexParameterError
from .search import NoValidQueryError, cmc_from_search, search_features, search_report

__all__ = [
    "INDEX_TYPES",
    "FeaturesFileError",
    "GalleryIndex",
    "ImageList",
    "IndexCompatibilityError",
    "IndexFormatError",
    "IndexParameterError",
    "NoValidQueryError",
    "SearchResult",
    "UnsafeIndexPathError",
    "cmc_from_search",
    "collect_images",
    "load_features",
    "parse_identity",
    "resolve_inside_root",
    "save_features",
    "search_features",
    "search_report",
]
