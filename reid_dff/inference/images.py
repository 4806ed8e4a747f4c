"""Which images a command works on: one file, a folder (recursive), or a text file listing paths."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..data.datasets.base import IMAGE_EXTENSIONS, MARKET_NAME
from ..errors import ReidDffError

LIST_EXTENSIONS = (".txt", ".lst")


class ImageListError(ReidDffError):
    """An image spec that is neither an image, a folder of images nor a list of image paths."""


@dataclass
class ImageList:
    """Image paths relative to a common ``root`` (sorted, unique)."""

    root: str
    paths: list[str]

    def absolute(self) -> list[str]:
        """The absolute paths, in order."""
        return [os.path.join(self.root, p) for p in self.paths]


def collect_images(spec: str | os.PathLike) -> ImageList:
    """Images named by ``spec``: an image file, a folder (searched recursively), or a ``.txt`` list.

    A list holds one path per line (relative to the list's folder, or absolute); blank lines and lines
    starting with ``#`` are skipped. The root is the folder (or the list's folder, or the image's folder).
    """
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        root = os.path.abspath(spec)
        paths = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in files:
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.relpath(os.path.join(folder, name), root))
        if not paths:
            raise FileNotFoundError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}; point to a folder of images"
            )
        return ImageList(root, sorted(paths))
    if not os.path.isfile(spec):
        raise FileNotFoundError(
            f"{spec} does not exist; expected an image, a folder of images or a .txt list of image paths"
        )
    if spec.lower().endswith(IMAGE_EXTENSIONS):
        return ImageList(os.path.dirname(os.path.abspath(spec)), [os.path.basename(spec)])
    if spec.lower().endswith(LIST_EXTENSIONS):
        return _read_list(spec)
    raise ImageListError(
        f"{spec} is neither an image ({', '.join(IMAGE_EXTENSIONS)}) nor a list of paths "
        f"({', '.join(LIST_EXTENSIONS)})"
    )


def _read_list(list_path: str) -> ImageList:
    base = os.path.dirname(os.path.abspath(list_path))
    absolute = []
    with open(list_path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            path = os.path.normpath(os.path.join(base, os.path.expanduser(line)))
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{list_path}:{number}: image {path} does not exist")
            absolute.append(path)
    if not absolute:
        raise ImageListError(f"{list_path} lists no images; write one image path per line")
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return ImageList(root, sorted({os.path.relpath(p, root) for p in absolute}))


def parse_identity(path: str) -> tuple[int, int] | None:
    """``(pid, camid)`` from a Market-1501-style file name (camid 0-based), or None if it carries none.

    Market-1501, DukeMTMC-reID and the synthetic domains name images ``0002_c3s1_000451_01.jpg``
    (pid 2, camera 3 -> camid 2).
    """
    match = MARKET_NAME.match(os.path.basename(path))
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) - 1
