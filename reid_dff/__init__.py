"""reid-dff: person re-identification with Deep Frequency Filtering for domain generalization."""

__version__ = "0.1.0"
