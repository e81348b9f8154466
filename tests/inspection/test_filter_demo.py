"""The hand-made filter demo: line filters over photos and synthetic lines."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnkeras.inspection import filter_demo


def test_zero_filter_gives_an_exactly_black_map():
    maps = filter_demo.apply_filters(filter_demo.sample_photos(), filter_demo.line_filters())
    assert maps.shape == (2, 427, 640, 3)
    assert (maps[..., 2] == 0).all()
    assert maps[..., 0].max() > 0 and maps[..., 1].max() > 0


def test_vertical_filter_prefers_vertical_lines_on_a_synthetic_image():
    synthetic_vertical = np.zeros((1, 21, 21, 1), "float32")
    synthetic_vertical[0, :, 10] = 1.0  # one white vertical line (synthetic)
    synthetic_horizontal = synthetic_vertical.transpose(0, 2, 1, 3)
    filters = filter_demo.line_filters(7, channels=1)
    on_vertical = filter_demo.apply_filters(synthetic_vertical, filters)
    on_horizontal = filter_demo.apply_filters(synthetic_horizontal, filters)
    assert on_vertical[..., 0].max() == 7 and on_horizontal[..., 0].max() == 1
    assert on_horizontal[..., 1].max() == 7 and on_vertical[..., 1].max() == 1


def test_filter_demo_picture(tmp_path):
    path = filter_demo.plot_filter_demo(tmp_path / "demo.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > height > 200  # two rows of four panels
