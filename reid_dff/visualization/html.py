"""An HTML page of search results: one row per query, its thumbnail then the ranked gallery thumbnails.

Thumbnails are either embedded (``"embed"``, the default: small JPEGs as base64 ``data:`` URIs, so the
page is one self-contained file that can be mailed or moved) or linked (``"relative"``: ``<img src>``
relative to the page's folder, a small page that only works next to the images).
"""

from __future__ import annotations

import base64
import html
import os
import urllib.parse

import cv2

from ..data.io import read_image
from ..inference.index import resolve_inside_root
from ..utils import atomic_write_text
from .drawing import resize

THUMBNAIL_MODES = ("embed", "relative")
_BORDER = {True: "#00aa00", False: "#dc0000", None: "#969696"}


def resolve_report_path(root: str, rel_path: str, what: str) -> str:
    """An image of a search report (``what``: "query" or "gallery"), checked as the index checks its own;
    images that moved since the search are found by searching again with their current root."""
    return resolve_inside_root(
        root,
        rel_path,
        what,
        "the search report",
        moved=f"the images moved since the search: search again with the {what} root where they are now",
    )


_STYLE = """
body { font-family: sans-serif; margin: 16px; }
.row { display: flex; align-items: flex-start; gap: 6px; margin-bottom: 14px; }
.cell { text-align: center; font-size: 11px; }
.cell img { border: 4px solid #969696; display: block; }
.query img { border-color: #1e5ae6; }
.sep { width: 14px; }
"""


def _thumbnail_src(image_path: str, html_dir: str, mode: str, size: tuple[int, int]) -> str:
    if mode == "relative":
        return urllib.parse.quote(os.path.relpath(image_path, html_dir).replace(os.sep, "/"))
    thumb = resize(read_image(image_path), size)
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(thumb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a thumbnail of {image_path}")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def _cell(src: str, caption: str, title: str, css: str = "", border: str | None = None) -> str:
    style = f' style="border-color: {border}"' if border else ""
    return (
        f'<div class="cell {css}"><img src="{html.escape(src)}" title="{html.escape(title)}"{style}>'
        f"{html.escape(caption)}</div>"
    )


def write_search_html(
    path: str | os.PathLike,
    report: dict,
    thumbnails: str = "embed",
    thumb_size: tuple[int, int] = (128, 64),
) -> str:
    """Write the page for a report from :func:`reid_dff.inference.search_report`; returns its path.

    Query images are read from ``report["query_root"]``, gallery images from ``report["gallery_root"]``;
    every path is checked to exist and to stay inside its root before it is read or linked.
    """
    if thumbnails not in THUMBNAIL_MODES:
        raise ValueError(f"thumbnails must be one of {', '.join(THUMBNAIL_MODES)}, got {thumbnails!r}")
    path = os.fspath(path)
    html_dir = os.path.dirname(os.path.abspath(path))
    index_info = report.get("index", {})
    title = (
        f"reid-dff search: {len(report['queries'])} queries, top-{report['topk']}, "
        f"{index_info.get('type', '?')} index, {index_info.get('metric', '?')} distance"
    )
    sources: dict[str, str] = {}  # a gallery image shown for many queries is read and encoded once

    def src(image_path: str) -> str:
        if image_path not in sources:
            sources[image_path] = _thumbnail_src(image_path, html_dir, thumbnails, thumb_size)
        return sources[image_path]

    rows = []
    for query in report["queries"]:
        query_path = resolve_report_path(report["query_root"], query["query"], "query")
        caption = "query" if query["pid"] < 0 else f"query pid {query['pid']}"
        cells = [_cell(src(query_path), caption, query["query"], "query")]
        cells.append('<div class="sep"></div>')
        for item in query["results"]:
            gallery_path = resolve_report_path(report["gallery_root"], item["path"], "gallery")
            cells.append(
                _cell(
                    src(gallery_path),
                    f"{item['rank']}: {item['distance']:.3g}",
                    item["path"],
                    border=_BORDER[item["match"]],
                )
            )
        rows.append(f'<div class="row">{"".join(cells)}</div>')
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        f"<h3>{html.escape(title)}</h3>\n<p>Frames: blue = query, green = same identity, red = different "
        "identity, grey = identity unknown. Captions: rank and distance.</p>\n"
        + "\n".join(rows)
        + "\n</body></html>\n"
    )
    atomic_write_text(path, page)
    return path
