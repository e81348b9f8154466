import pytest

import cnnkeras
from cnnkeras.registry import Registry


def test_duplicate_names_raise():
    registry = Registry("widget")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.add("a", 2)


def test_unknown_name_lists_the_known_ones():
    registry = Registry("widget")
    registry.add("b", 1)
    registry.add("a", 2)
    with pytest.raises(ValueError, match=r"Unknown widget 'c'\. Known widgets: a, b\."):
        registry.get("c")


def test_metadata_is_kept_per_name():
    registry = Registry("widget")
    registry.register("a", small_input_shape=(8, 8, 1))(object())
    assert registry.metadata("a") == {"small_input_shape": (8, 8, 1)}


def test_build_rejects_unknown_architecture_listing_known():
    with pytest.raises(ValueError, match="Known architectures: .*lecture_cnn"):
        cnnkeras.build("lecture", input_shape=(28, 28, 1), num_classes=10)


def test_build_rejects_unknown_option_listing_valid_ones():
    with pytest.raises(ValueError, match=r"no option\(s\) filterz\. Valid options: filters"):
        cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10, filterz=3)


def test_lecture_cnn_is_listed_with_its_default_input():
    assert "lecture_cnn" in cnnkeras.list_architectures()
    assert cnnkeras.default_input_shape("lecture_cnn") == (28, 28, 1)


def test_an_index_names_builders_before_their_module_is_imported():
    registry = Registry("widget", index={"dumps": "json"})
    assert registry.names() == ["dumps"] and "dumps" in registry
    with pytest.raises(ValueError, match="registered by json, but the index names None"):
        registry.add("loads", __import__("json").loads)


def test_the_architecture_index_matches_what_the_families_register():
    import importlib

    from cnnkeras.registry import ARCHITECTURES

    importlib.import_module("cnnkeras.architectures")  # every family registers its builders
    for name in ARCHITECTURES.names():
        builder = ARCHITECTURES.get(name)
        assert callable(builder)
        assert builder.__module__ == ARCHITECTURES._index[name]
