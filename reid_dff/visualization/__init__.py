"""Pictures: frequency masks beside spectra, activation overlays, ranked lists, and HTML search pages."""

from .drawing import (
    add_border,
    centre_rfft_map,
    colorize,
    log_magnitude,
    overlay_heatmap,
    ranked_list_image,
    save_png,
    tile,
)
from .html import write_search_html

__all__ = [
    "add_border",
    "centre_rfft_map",
    "colorize",
    "log_magnitude",
    "overlay_heatmap",
    "ranked_list_image",
    "save_png",
    "tile",
    "write_search_html",
]
