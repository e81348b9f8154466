"""Moving-digit clips and per-pixel masks derived from the real MNIST test set."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cnnkeras import data
from cnnkeras.data import derived

PLAN = data.SplitPlan(0.1, 0.2, seed=1337, limit=32)


@pytest.fixture
def mnist(mnist_dir):
    """32 real MNIST test digits at 28x28 (batched, pixels in [0, 255]), as the derived specs
    see them."""
    return data.load(f"idx:{mnist_dir}", image_size=(28, 28), channels=1, batch_size=16,
                     plan=PLAN)


def test_bounce_reflects_off_both_walls():
    positions = derived.bounce(tf.constant([3, 1]), tf.constant([2, -2]), 5, tf.constant(4))
    assert positions.numpy().tolist() == [[3, 3, 1, 1, 3], [1, 1, 3, 3, 1]]


def test_place_puts_each_sprite_at_its_offset_and_drops_what_falls_outside():
    sprites = tf.reshape(tf.range(1, 7, dtype=tf.float32), (1, 2, 3, 1))
    rows, cols = tf.constant([[0, 3, 4]]), tf.constant([[0, 2, 3]])
    frames = derived.place(sprites, rows, cols, (5, 5)).numpy()[0, ..., 0]
    assert frames.shape == (3, 5, 5)
    np.testing.assert_array_equal(frames[0, :2, :3], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(frames[1, 3:5, 2:5], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(frames[2, 4, 3:5], [1, 2])  # the rest is off the frame
    assert frames.sum(axis=(1, 2)).tolist() == [21, 21, 3]


def test_moving_clips_keep_the_whole_real_digit_in_every_frame(mnist):
    images, labels = next(iter(mnist.train))
    clips = derived.moving_clips(images, tf.constant([1337, 0], tf.int64)).numpy()
    assert clips.shape == (16, derived.FRAMES, 28, 28, 1)
    sprite_sums = tf.nn.avg_pool2d(images, 2, 2, "VALID").numpy().sum(axis=(1, 2, 3))
    np.testing.assert_allclose(clips.sum(axis=(2, 3, 4)), np.repeat(sprite_sums[:, None],
                                                                   derived.FRAMES, 1), rtol=1e-5)
    # the digit moves: its centre of mass shifts by at most MAX_SPEED pixels a frame per axis
    grid = np.arange(28)
    mass = clips[..., 0].sum(axis=(2, 3))
    centre_y = (clips[..., 0].sum(axis=3) * grid).sum(axis=2) / mass
    centre_x = (clips[..., 0].sum(axis=2) * grid).sum(axis=2) / mass
    steps = np.abs(np.diff(np.stack([centre_y, centre_x]), axis=2))
    assert steps.max() <= derived.MAX_SPEED + 1e-4 and steps.mean() > 0.5


def test_moving_clips_are_seeded(mnist):
    images, _ = next(iter(mnist.train))
    first = derived.moving_clips(images, tf.constant([1, 2], tf.int64)).numpy()
    again = derived.moving_clips(images, tf.constant([1, 2], tf.int64)).numpy()
    other = derived.moving_clips(images, tf.constant([1, 3], tf.int64)).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_segmentation_masks_are_the_bright_pixels_labelled_with_the_digit(mnist):
    images, labels = next(iter(mnist.test))
    masks = derived.segmentation_masks(images, labels).numpy()
    images, labels = images.numpy()[..., 0], labels.numpy()
    assert masks.shape == images.shape and masks.dtype == np.int64
    assert images.max() == 255 and derived.THRESHOLD == 127.5  # half intensity
    np.testing.assert_array_equal(masks > 0, images >= 127.5)
    for mask, label in zip(masks, labels, strict=True):
        assert set(np.unique(mask)) == {0, label + 1}
    assert 0.05 < (masks > 0).mean() < 0.3  # MNIST digits cover a small part of the frame


def test_spec_forms_wrap_any_spec(mnist_dir):
    moving = data.load(f"moving:idx:{mnist_dir}", image_size=(16, 16), channels=1,
                       batch_size=8, plan=PLAN)
    clips, labels = next(iter(moving.validation))
    assert moving.input_shape == (derived.FRAMES, 16, 16, 1) == tuple(clips.shape[1:])
    assert moving.num_classes == 10 and labels.shape == (8,)
    assert moving.spec == f"moving:idx:{mnist_dir}"

    segmentation = data.load("segmentation:digits", image_size=(12, 12), channels=1,
                             batch_size=8, plan=PLAN)
    images, masks = next(iter(segmentation.test))
    assert segmentation.class_names[:2] == ("background", "0")
    assert segmentation.num_classes == 11 and masks.shape == (8, 12, 12)
    assert "moving:SPEC" in data.SPEC_FORMS and "segmentation:SPEC" in data.SPEC_FORMS


def test_a_wrapped_spec_that_is_unknown_is_the_usual_error():
    with pytest.raises(ValueError, match="Unknown dataset spec 'imagenet'"):
        data.load("segmentation:imagenet", image_size=(28, 28), channels=1, batch_size=8,
                  plan=PLAN)
