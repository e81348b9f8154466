"""One picture: any file PIL opens becomes RGB uint8; fitting converts channels and size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnkeras.data.images import fit_image, load_image


def save(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


def test_grayscale_rgba_cmyk_palette_and_16bit_images_become_rgb(tmp_path):
    grey = save(tmp_path, "grey.png", Image.new("L", (8, 6), 90))
    rgba = Image.new("RGBA", (8, 6), (200, 10, 10, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 4, 6))  # left half fully transparent
    rgba = save(tmp_path, "rgba.png", rgba)
    cmyk = save(tmp_path, "cmyk.jpg", Image.new("CMYK", (8, 6), (0, 255, 255, 0)))
    palette = save(tmp_path, "palette.gif", Image.new("RGB", (8, 6), (0, 0, 250)).convert("P"))
    deep = save(tmp_path, "deep.png", Image.fromarray(np.full((6, 8), 65535, np.uint16)))
    images = {p.name: load_image(p) for p in (grey, rgba, cmyk, palette, deep)}
    assert all(a.shape == (6, 8, 3) and a.dtype == np.uint8 for a in images.values())
    assert (images["grey.png"] == 90).all()
    assert (images["rgba.png"][:, :4] == 255).all()  # transparent -> white
    assert (images["rgba.png"][:, 4:] == (200, 10, 10)).all()
    cmyk_red = images["cmyk.jpg"][3, 4].astype(int)
    assert cmyk_red[0] > 200 and cmyk_red[1:].max() < 60
    assert (images["palette.gif"][..., 2] > 200).all()
    assert (images["deep.png"] == 255).all()


def test_fit_image_converts_channels_then_resizes_or_pads():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    grey = fit_image(rgb, size=(8, 12), channels=1, fit="resize").numpy()
    assert grey.shape == (8, 12, 1) and grey.dtype == np.uint8
    assert (grey == 76).all()  # ITU-R 601 luma of red: 0.2989 * 255
    padded = fit_image(rgb[..., :1], size=(6, 8), channels=3, fit="pad").numpy()
    assert padded.shape == (6, 8, 3)
    assert (padded[1:5, 1:7] == 255).all() and padded[0].max() == 0  # centred, zeros around
