"""Mixed precision of a run: ``SOLVER.AMP`` and ``SOLVER.AMP_DTYPE`` -> the autocast dtype (CUDA only).

bf16 has float32's exponent range, so it trains without a gradient scaler; fp16 needs one. ``auto``
takes bf16 where the GPU supports it (Ampere and later) and fp16 otherwise. Spectral transforms run in
float32 whatever the dtype (``reid_dff.modeling.backbones.ffc.FourierUnit``).
"""

from __future__ import annotations

import torch

from ..config import ConfigError

__all__ = ["AMP_DTYPES", "resolve_amp_dtype"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp_dtype(cfg, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run on ``device``; None: no autocast (``SOLVER.AMP`` off, or not CUDA)."""
    choice = str(cfg.SOLVER.AMP_DTYPE)
    if choice != "auto" and choice not in AMP_DTYPES:
        raise ConfigError(f"SOLVER.AMP_DTYPE must be one of auto, bf16, fp16, got {choice!r}")
    if not cfg.SOLVER.AMP or device.type != "cuda":
        return None
    if choice == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return AMP_DTYPES[choice]
