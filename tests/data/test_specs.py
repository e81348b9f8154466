import gzip
import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from cnnkeras import data

PLAN = data.SplitPlan(validation_fraction=0.1, test_fraction=0.2, seed=7)


def first_batch(dataset):
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


def test_digits_is_the_real_sklearn_set_split_and_resized():
    loaded = data.load("digits", image_size=(28, 28), channels=1, batch_size=16, plan=PLAN)
    assert sum(loaded.sizes.values()) == 1797
    assert loaded.sizes == {"train": 1257, "validation": 180, "test": 360}
    images, labels = first_batch(loaded.train)
    assert images.shape == (16, 28, 28, 1) and images.dtype == np.float32
    # float32 pixels in [0, 255], cast and not scaled: every model scales its own
    assert 0.0 <= images.min() and images.max() == 255.0
    np.testing.assert_array_equal(images, np.round(images))
    assert loaded.class_names == tuple(str(i) for i in range(10))


def test_split_is_seeded_and_stratified():
    first = data.load_source("digits", PLAN)
    second = data.load_source("digits", PLAN)
    labels = lambda split: np.array([int(y) for _, y in split])  # noqa: E731
    np.testing.assert_array_equal(labels(first.test), labels(second.test))
    counts = np.bincount(labels(first.test), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # 360 test images over 10 classes


def test_idx_reads_the_real_mnist_test_set(mnist_dir):
    loaded = data.load(f"idx:{mnist_dir}", image_size=(28, 28), channels=1, batch_size=32,
                       plan=PLAN)
    assert sum(loaded.sizes.values()) == 10_000
    assert loaded.sizes["test"] == 2000 or abs(loaded.sizes["test"] - 2000) <= 1
    images, labels = first_batch(loaded.test)
    assert images.shape == (32, 28, 28, 1) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 255.0  # MNIST's ink, as the file has it
    assert set(np.unique(labels)) <= set(range(10))


def test_idx_pads_to_lenet_input_with_zeros(mnist_dir):
    loaded = data.load(f"idx:{mnist_dir}", image_size=(32, 32), channels=1, batch_size=8,
                       plan=data.SplitPlan(0.1, 0.2, 7, limit=8), fit="pad")
    images, _ = first_batch(loaded.train)
    assert images.shape == (8, 32, 32, 1)
    assert images[:, :2].max() == 0 and images[:, -2:].max() == 0  # the 2-pixel border


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_train_and_t10k_pairs_are_used_as_given(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (50, 6, 6)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(50) % 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (12, 6, 6)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(12) % 3)
    source = data.load_source(f"idx:{tmp_path}", PLAN)
    assert source.sizes["test"] == 12
    assert source.sizes["train"] + source.sizes["validation"] == 50


def test_idx_mismatched_counts_is_a_clear_error(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 4, 4)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        data.load_source(f"idx:{tmp_path}", PLAN)


def test_idx_directory_without_pairs_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No IDX pair"):
        data.load_source(f"idx:{tmp_path}", PLAN)


def idx_header(*dims) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + b"".join(struct.pack(">I", d)
                                                                  for d in dims)


def gzipped(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


@pytest.mark.parametrize("name, content, says", [
    ("t10k-images-idx3-ubyte.gz", lambda good: good[: len(good) // 2],
     r"its gzip data ends early \(the file is truncated\)"),
    ("t10k-images-idx3-ubyte.gz", lambda good: b"GIF89a" + good,
     r"it is not valid gzip data \(Not a gzipped file"),
    ("t10k-images-idx3-ubyte.gz", lambda good: good[:10] + b"\xff" + good[11:],
     r"it is not valid gzip data \(Error -3 while decompressing data"),  # zlib.error
    ("t10k-images-idx3-ubyte.gz", lambda good: good[:-8] + bytes(8),
     r"it is not valid gzip data \(CRC check failed"),
    ("t10k-images-idx3-ubyte.gz", lambda good: gzipped(b"\x00\x00\x09\x03" + bytes(60)),
     r"not an unsigned-byte IDX file \(bad magic number: it starts with 0x00000903"),
    ("t10k-images-idx3-ubyte.gz", lambda good: gzipped(idx_header(5, 4, 4) + bytes(79)),
     r"is truncated: the header says \[5, 4, 4\] \(80 values\), the file holds 79"),
    ("t10k-images-idx3-ubyte.gz", lambda good: gzipped(idx_header(5, 4, 4) + bytes(81)),
     "is longer than its header says"),
    ("t10k-images-idx3-ubyte.gz", lambda good: gzipped(idx_header(5, 4, 4)[:9]),
     "is truncated: its 3-dimension header needs 16 bytes, the file holds 9"),
    ("t10k-images-idx3-ubyte", lambda good: good, "is gzip-compressed but not named .gz"),
])
def test_a_damaged_idx_file_is_a_value_error_naming_it_and_the_valid_input(tmp_path, name,
                                                                           content, says):
    good = gzipped(idx_header(5, 4, 4) + bytes(range(80)))  # deflate data from byte 10 on
    (tmp_path / name).write_bytes(content(good))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5) % 2)
    with pytest.raises(ValueError, match=says) as caught:
        data.load_source(f"idx:{tmp_path}", PLAN)
    message = str(caught.value)
    assert str(tmp_path / name) in message and len(message.splitlines()) == 1
    assert "PREFIX-images-idx3-ubyte[.gz] (N x H x W unsigned bytes)" in message


def test_an_idx_pair_without_examples_is_a_clear_error(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((0, 4, 4)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(0))
    with pytest.raises(ValueError, match="hold no examples"):
        data.load_source(f"idx:{tmp_path}", PLAN)


def test_folder_reads_the_real_flower_photos(flowers_dir):
    loaded = data.load(f"folder:{flowers_dir}", image_size=(32, 32), channels=3, batch_size=8,
                       plan=data.SplitPlan(0.1, 0.2, 7, limit=16))
    assert loaded.class_names == ("daisy", "dandelion", "rose", "sunflower", "tulip")
    assert loaded.sizes == {"train": 16, "validation": 16, "test": 16}
    images, labels = first_batch(loaded.train)
    assert images.shape == (8, 32, 32, 3)
    assert images.std() > 10 and 1 < images.max() <= 255  # real photos in [0, 255], not blank
    assert set(labels) <= set(range(5))


@pytest.fixture
def dirty_folder(tmp_path, flowers_dir):
    """Two classes of real photos plus a corrupt JPEG and a text file."""
    root = tmp_path / "images"
    for name in ("daisy", "rose"):
        (root / name).mkdir(parents=True)
        for photo in sorted((flowers_dir / name).glob("*.jpg"))[:6]:
            (root / name / photo.name).write_bytes(photo.read_bytes())
    good = sorted((flowers_dir / "daisy").glob("*.jpg"))[0].read_bytes()
    (root / "daisy" / "broken.jpg").write_bytes(good[:200])
    (root / "rose" / "notes.txt").write_text("not an image")
    return root


def test_corrupt_and_non_image_files_are_named_skipped_and_counted(dirty_folder):
    with pytest.warns(data.DataWarning) as caught:
        loaded = data.load(f"folder:{dirty_folder}", image_size=(16, 16), channels=3,
                           batch_size=4, plan=data.SplitPlan(0.2, 0.2, 1))
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.jpg" in messages and "notes.txt" in messages
    assert len(loaded.skipped_files) == 2
    assert sum(loaded.sizes.values()) == 12
    total = sum(int(labels.shape[0]) for split in (loaded.train, loaded.validation, loaded.test)
                for _, labels in split)
    assert total == 12  # a full pass over every split decodes without error


def test_missing_empty_and_one_class_folders_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        data.load_source(f"folder:{tmp_path / 'nope'}", PLAN)
    with pytest.raises(ValueError, match="at least two classes; found 0"):
        data.load_source(f"folder:{tmp_path}", PLAN)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="holds no readable images"):
        data.load_source(f"folder:{tmp_path}", PLAN)


def test_unknown_spec_lists_valid_specs():
    with pytest.raises(ValueError, match=r"Unknown dataset spec 'imagenet'.*digits, mnist.*"
                                         r"idx:DIR, folder:DIR"):
        data.load_source("imagenet", PLAN)


@pytest.mark.parametrize("name, shape, classes", [
    ("mnist", (28, 28, 1), 10),
    ("tf_flowers", (24, 24, 3), 5),
])
def test_tfds_specs_with_mock_data(name, shape, classes):
    with tfds.testing.mock_data(num_examples=20):
        loaded = data.load(name, image_size=shape[:2], channels=shape[2], batch_size=4,
                           plan=PLAN)
        images, labels = first_batch(loaded.train)
    assert images.shape == (4, *shape)
    assert len(loaded.class_names) == classes
    assert labels.dtype == np.int64
    assert 1.0 < tf.reduce_max(images) <= 255.0
