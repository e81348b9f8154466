import pytest

import cnnkeras


def test_lecture_cnn_shapes_and_parameters_from_the_notes():
    model = cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["block1_conv"] == (26, 26, 25)
    assert shapes["block1_pool"] == (13, 13, 25)
    assert shapes["block2_conv"] == (11, 11, 50)
    assert shapes["block2_pool"] == (5, 5, 50)
    assert shapes["flatten"] == (1250,)
    assert shapes["fc1"] == (100,)
    assert shapes["predictions"] == (10,)
    assert model.count_params() == 137_660


def test_lecture_cnn_options_change_the_geometry():
    model = cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10,
                           filters=(8, 16, 32), kernel_sizes=(3, 3, 3), strides=1,
                           paddings="same", batch_norm=True)
    assert model.get_layer("block3_conv").output.shape[1:] == (7, 7, 32)
    assert model.get_layer("block2_bn").output.shape[1:] == (14, 14, 16)
    assert model.get_layer("block2_conv").count_params() == 3 * 3 * 8 * 16  # BN replaces bias
    assert model.get_layer("block2_bn").count_params() == 4 * 16


def test_lecture_cnn_batch_norm_settles_within_a_short_run():
    # momentum 0.9, not Keras' 0.99: after 40 steps the moving mean holds 1 - 0.9**40 (98%) of
    # the data's mean where 0.99 would hold 33%, and validation in a short trial sees that
    model = cnnkeras.build("lecture_cnn", input_shape=(16, 16, 1), num_classes=10,
                           batch_norm=True)
    assert [layer.momentum for layer in model.layers if "_bn" in layer.name] == [0.9, 0.9]


def test_lecture_cnn_geometry_error_names_the_layer():
    with pytest.raises(ValueError, match=r"block1_conv: input 8x8: kernel_size=9"):
        cnnkeras.build("lecture_cnn", input_shape=(8, 8, 1), num_classes=10, kernel_sizes=9)


def test_lecture_cnn_per_block_option_length_is_checked():
    with pytest.raises(ValueError, match=r"strides needs one value per conv block \(2\)"):
        cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10, strides=(1, 1, 1))
