"""reid-dff: person re-identification with Deep Frequency Filtering for domain generalization."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy (PEP 562): ``import reid_dff`` stays light; torch and the model load only when used.
    if name == "FeatureExtractor":
        from .inference.extractor import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
