import os

import cv2
import numpy as np
import pytest
import torch

from reid_dff.visualization.drawing import (
    BLUE,
    GREEN,
    GREY,
    RED,
    add_border,
    centre_rfft_map,
    colorize,
    log_magnitude,
    normalize_map,
    overlay_heatmap,
    put_label,
    ranked_list_image,
    save_png,
    tile,
)


def random_image(h=32, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_add_border_frames_the_image_with_the_colour():
    img = random_image()
    framed = add_border(img, GREEN, width=3)
    assert framed.shape == (38, 22, 3)
    np.testing.assert_array_equal(framed[3:-3, 3:-3], img)
    for strip in (framed[:3], framed[-3:], framed[:, :3], framed[:, -3:]):
        assert (strip.reshape(-1, 3) == GREEN).all()


def test_centre_rfft_map_puts_zero_frequency_mid_left():
    # The rfft2 of a constant map has all its energy at the zero frequency, position (0, 0).
    H, W = 8, 10
    spectrum = torch.fft.rfft2(torch.ones(H, W), norm="ortho").abs().numpy()
    assert spectrum.shape == (H, W // 2 + 1)
    centred = centre_rfft_map(spectrum)
    assert np.unravel_index(centred.argmax(), centred.shape) == (H // 2, 0)
    # Odd heights: fftshift moves the zero frequency to row H // 2 as well.
    odd = centre_rfft_map(torch.fft.rfft2(torch.ones(7, W)).abs().numpy())
    assert np.unravel_index(odd.argmax(), odd.shape) == (3, 0)
    # Only the vertical axis is shifted: columns keep their order.
    ramp = np.arange(H * 6).reshape(H, 6)
    np.testing.assert_array_equal(centre_rfft_map(ramp)[:, 0], np.roll(ramp[:, 0], H // 2))


def test_log_magnitude_matches_torch_fft():
    x = torch.randn(3, 8, 8)
    freq = torch.fft.rfft2(x, norm="ortho")
    stacked = torch.cat([freq.real, freq.imag], dim=0).numpy()
    expected = torch.log1p(freq.abs()).mean(0).numpy()
    np.testing.assert_allclose(log_magnitude(stacked), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="stacked"):
        log_magnitude(np.zeros((3, 4, 4)))


def test_colorize_and_normalize_map():
    values = np.linspace(0, 1, 64).reshape(8, 8)
    rgb = colorize(values)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    # JET: low values are blue, high values red (RGB order).
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[-1, -1, 0] > rgb[-1, -1, 2]
    assert (normalize_map(np.full((3, 3), 5.0)) == 0).all()
    with pytest.raises(ValueError, match="2-D"):
        colorize(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        colorize(np.array([[np.nan, 1.0]]))


def test_overlay_heatmap_upsamples_and_blends():
    img = np.zeros((64, 32, 3), np.uint8)
    activation = np.zeros((4, 2), np.float32)
    activation[0, 0] = 1.0  # hot top-left corner
    out = overlay_heatmap(img, activation, alpha=0.5)
    assert out.shape == (64, 32, 3)
    assert out[0, 0, 0] > out[-1, -1, 0]  # red where the activation is high
    np.testing.assert_array_equal(overlay_heatmap(img, activation, alpha=0.0), img)
    with pytest.raises(ValueError, match="alpha"):
        overlay_heatmap(img, activation, alpha=2.0)
    with pytest.raises(ValueError, match="uint8"):
        overlay_heatmap(img.astype(np.float32), activation)


def test_tile_layout_and_label():
    a, b = random_image(10, 5), random_image(20, 8, seed=1)
    canvas = tile([[a, b], [b]], gap=2)
    assert canvas.shape == (2 + 20 + 2 + 20 + 2, 2 + 5 + 2 + 8 + 2, 3)
    np.testing.assert_array_equal(canvas[2:12, 2:7], a)
    assert put_label(a, "x").shape == (24, 5, 3)
    with pytest.raises(ValueError, match="at least one image"):
        tile([[]])


def test_ranked_list_image_frames_matches_green_and_mistakes_red():
    query = random_image()
    gallery = [random_image(seed=i) for i in range(4)]
    out = ranked_list_image(query, gallery, [True, False, None, True], size=(40, 20), border=3)
    cell_w = 20 + 6
    # query + spacer + 4 cells, 2-pixel gaps around each
    assert out.shape[1] == 2 + cell_w + 2 + 6 + 4 * (2 + cell_w) + 2
    # The top-left pixel of each frame (below the 14-pixel label) has the frame's colour.
    y = 2 + 14
    x = 2
    assert tuple(out[y, x]) == BLUE
    x += cell_w + 2 + 6 + 2
    for colour in (GREEN, RED, GREY, GREEN):
        assert tuple(out[y, x]) == colour
        x += cell_w + 2
    with pytest.raises(ValueError, match="match flags"):
        ranked_list_image(query, gallery, [True])


def test_save_png_writes_a_readable_picture_atomically(tmp_path):
    img = random_image(30, 20)
    path = save_png(tmp_path / "sub" / "pic.png", img)
    assert os.listdir(tmp_path / "sub") == ["pic.png"]
    back = cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(back, img)  # PNG is lossless and the channel order survives
    with pytest.raises(ValueError, match=r"\.png"):
        save_png(tmp_path / "pic.jpg", img)
