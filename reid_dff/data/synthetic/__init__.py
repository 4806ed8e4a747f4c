"""Procedurally generated data: multi-domain person ReID (Market-1501 layout) and an Office-Home stand-in.

The embedded default datasets: a newcomer runs the whole pipeline without downloading anything, and tests
train on them. :func:`ensure_synthetic_data` is the one entry every caller uses: it generates what a config
names when it is absent and checks it against the config when present.

- :mod:`.appearance` -- what an identity looks like (palette, outfit schemes, body shape, torso textures);
- :mod:`.render` -- one ReID image: the camera's scene, the person, the domain's camera pipeline;
- :mod:`.tree` -- the ReID tree on disk: planning, atomic writing, the manifest and its checks;
- :mod:`.officehome` -- the Office-Home-shaped classification set (rendering and its tree);
- :mod:`.classes` -- the many-class shape x texture set of stage 1 at CPU scale (rendering and its tree).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .appearance import PALETTE_RGB, Appearance, sample_appearance
from .classes import (
    CLASSES_DIRNAME,
    class_names,
    ensure_synthetic_classes,
    generate_synthetic_classes,
    read_classes_manifest,
    render_class_image,
)
from .officehome import ensure_synthetic_officehome, generate_synthetic_officehome, render_object_image
from .render import (
    DOMAIN_RECIPES,
    REFERENCE_HEIGHT,
    CameraSetup,
    DomainRecipe,
    camera_setup,
    encode_jpeg,
    render_image,
)
from .tree import (
    GALLERY_DIR,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MARKET_NAME_RE,
    MAX_CAMERAS,
    MAX_PID,
    QUERY_DIR,
    RENDERER_VERSION,
    SPLIT_DIRS,
    SYNTHETIC_DIRNAME,
    TRAIN_DIR,
    ImageSpec,
    SyntheticDataError,
    SyntheticParameterError,
    SyntheticParams,
    SyntheticTreeExistsError,
    ensure_synthetic,
    generate_synthetic,
    plan_domain,
    read_manifest,
    read_split,
    total_hash,
    verify_synthetic,
)

__all__ = [
    "CLASSES_DIRNAME",
    "DOMAIN_RECIPES",
    "GALLERY_DIR",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MARKET_NAME_RE",
    "MAX_CAMERAS",
    "MAX_PID",
    "PALETTE_RGB",
    "QUERY_DIR",
    "REFERENCE_HEIGHT",
    "RENDERER_VERSION",
    "SPLIT_DIRS",
    "SYNTHETIC_DIRNAME",
    "TRAIN_DIR",
    "Appearance",
    "CameraSetup",
    "DomainRecipe",
    "ImageSpec",
    "SyntheticDataError",
    "SyntheticParameterError",
    "SyntheticParams",
    "SyntheticTreeExistsError",
    "camera_setup",
    "class_names",
    "encode_jpeg",
    "ensure_synthetic",
    "ensure_synthetic_classes",
    "ensure_synthetic_data",
    "ensure_synthetic_officehome",
    "generate_synthetic",
    "generate_synthetic_classes",
    "generate_synthetic_officehome",
    "plan_domain",
    "read_classes_manifest",
    "read_manifest",
    "read_split",
    "render_class_image",
    "render_image",
    "render_object_image",
    "sample_appearance",
    "total_hash",
    "verify_synthetic",
]


def _names_synthetic(specs: Iterable[Any]) -> bool:
    """Whether any dataset spec (``"synthetic"``, ``"synthetic:2"``, ...) names the synthetic ReID domains."""
    return any(str(spec).strip().partition(":")[0] == "synthetic" for spec in specs)


def ensure_synthetic_data(cfg: Any, specs: Iterable[Any] | None = None, workers: int = 1) -> list[str]:
    """Generate (when absent) or check (when present) every synthetic tree ``cfg`` uses; returns their paths.

    The ReID domains go to ``<DATASETS.ROOT>/synthetic`` when one of ``specs`` (by default
    ``DATASETS.SOURCES`` and ``DATASETS.TARGETS``) is ``synthetic[:k]``, with ``DATASETS.SYNTHETIC.*``; the
    Office-Home stand-in goes to ``<DATASETS.ROOT>/OfficeHomeDataset`` when
    ``DATASETS.OFFICEHOME.SYNTHETIC.ENABLED``, and the many-class set of stage 1 to
    ``<DATASETS.ROOT>/synthetic_classes`` when ``DATASETS.SYNTHETIC_CLASSES.ENABLED``. An existing tree made
    with other parameters is an error, never overwritten. The trainers call it on rank 0 before the other ranks read the data.
    """
    if specs is None:
        specs = [*cfg.DATASETS.SOURCES, *cfg.DATASETS.TARGETS]
    paths = []
    if _names_synthetic(specs):
        paths.append(ensure_synthetic(cfg, workers=workers))
    officehome = cfg.DATASETS.OFFICEHOME.SYNTHETIC
    if officehome.ENABLED:
        paths.append(
            ensure_synthetic_officehome(
                cfg.DATASETS.ROOT,
                seed=officehome.SEED,
                images_per_class=officehome.IMAGES_PER_CLASS,
                size=officehome.SIZE,
            )
        )
    classes = cfg.DATASETS.SYNTHETIC_CLASSES
    if classes.ENABLED:
        paths.append(
            ensure_synthetic_classes(
                cfg.DATASETS.ROOT,
                seed=classes.SEED,
                num_classes=classes.NUM_CLASSES,
                train_per_class=classes.TRAIN_PER_CLASS,
                val_per_class=classes.VAL_PER_CLASS,
                size=classes.SIZE,
            )
        )
    return paths
