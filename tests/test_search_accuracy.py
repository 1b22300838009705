"""Accuracy estimators: the NASWOT forward pass, the built-in data, proxy training, user callables."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latprof.errors import DataError, EstimatorError, LatprofError
from latprof.search import (
    CallableEstimator,
    ProxyTrainEstimator,
    ZeroCostEstimator,
    load_image_folder,
    make_estimator,
    scaled_copy,
    shapes10,
)
from latprof.search._naswot import _Forward, naswot_score
from latprof.space import get_space, parse_arch

SPACE = get_space("mnasnet")


def naive_same(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """Direct 'same'-padded convolution (TensorFlow's padding rule), one output cell at a time."""
    n, size, _, cin = x.shape
    k = w.shape[0]
    out = -(-size // stride)
    lo = max((out - 1) * stride + k - size, 0) // 2
    y = np.zeros((n, out, out, cin if depthwise else w.shape[3]))
    for p in range(out):
        for q in range(out):
            for i in range(k):
                for j in range(k):
                    r, c = p * stride + i - lo, q * stride + j - lo
                    if 0 <= r < size and 0 <= c < size:
                        y[:, p, q] += x[:, r, c] * w[i, j] if depthwise else x[:, r, c] @ w[i, j]
    return y


@pytest.mark.parametrize("size,k,stride", [(7, 3, 1), (8, 5, 2), (2, 5, 1), (1, 5, 1), (2, 3, 2), (1, 3, 2), (3, 5, 2)])
def test_numpy_convolutions_equal_a_direct_convolution(size, k, stride):
    """Skipping taps that only see padding (small inputs) must not change the result."""
    rng = np.random.default_rng(size * 100 + k * 10 + stride)
    x = rng.standard_normal((3, size, size, 4)).astype(np.float32)
    f = _Forward(3, np.random.default_rng(0))
    y = f.conv(x, 5, k, stride)
    w = _Forward(3, np.random.default_rng(0)).weight((k, k, 4, 5), k * k * 4)  # the weights conv() drew
    assert np.allclose(y, naive_same(x, w, stride, depthwise=False), atol=1e-4)
    f = _Forward(3, np.random.default_rng(1))
    y = f.depthwise(x, k, stride)
    w = _Forward(3, np.random.default_rng(1)).weight((k, k, 4), k * k)
    assert np.allclose(y, naive_same(x, w, stride, depthwise=True), atol=1e-4)


@pytest.mark.parametrize("size,stride", [(5, 1), (6, 2), (1, 2)])
def test_average_pooling_does_not_count_padding(size, stride):
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    total = naive_same(x, np.ones((3, 3, 3)), stride, depthwise=True)
    count = naive_same(np.ones((1, size, size, 1)), np.ones((3, 3, 1)), stride, depthwise=True)
    assert np.allclose(_Forward(2, np.random.default_rng(0)).avg_pool(x, stride), total / count, atol=1e-5)


def test_naswot_kernel_counts_agreeing_units():
    f = _Forward(3, np.random.default_rng(0))
    x = np.array([[1.0, -1.0, 2.0, -3.0], [1.0, 1.0, -2.0, -3.0], [-1.0, -1.0, 2.0, -3.0]], np.float32)
    f.relu(x.reshape(3, 1, 1, 4))
    codes = x > 0
    expected = [[np.sum(codes[i] == codes[j]) for j in range(3)] for i in range(3)]
    assert np.array_equal(f.kernel, expected)


def test_naswot_score_separates_inputs_and_is_deterministic():
    arch = scaled_copy(parse_arch("mnasnet-a1"), resolution=32, width=0.25, num_classes=10)
    images = shapes10(32, train=8, test=0).x_train
    score = naswot_score(arch, images, seed=1)
    assert np.isfinite(score) and score > 0
    assert naswot_score(arch, images, seed=1) == score
    assert naswot_score(arch, images, seed=2) != score
    # Identical inputs get identical codes: the kernel is singular and the score is -inf.
    assert naswot_score(arch, np.repeat(images[:1], 8, axis=0), seed=1) == float("-inf")
    with pytest.raises(ValueError, match="32 x 32"):
        naswot_score(arch, shapes10(16, train=4, test=0).x_train)


def test_zero_cost_estimator_ranks_a_much_bigger_network_higher():
    """NASWOT's known tendency (Mellor et al., 2021): wider, deeper networks separate more inputs."""
    est = ZeroCostEstimator(batch_size=16)
    small = SPACE.from_tokens([0 if d.name.endswith((".filters", ".layers")) else 1 for d in SPACE.decisions()])
    big = SPACE.from_tokens([len(d.choices) - 1 if d.name.endswith((".filters", ".layers")) else 1
                             for d in SPACE.decisions()])
    assert est(big) > est(small)
    assert est(small) == est(small)  # weights are a function of the architecture and the seed
    assert "NASWOT" in est.describe() and "Mellor" in est.describe()


def test_scaled_copy_keeps_every_choice_but_the_widths():
    a1 = parse_arch("mnasnet-a1")
    copy = scaled_copy(a1, resolution=32, width=0.5, num_classes=10)
    assert (copy.resolution, copy.num_classes, copy.stem_filters, copy.head_filters) == (32, 10, 16, 640)
    for b, c in zip(a1.blocks, copy.blocks):
        assert (b.op, b.kernel, b.stride, b.expansion, b.se_ratio, b.skip, b.repeats) == \
               (c.op, c.kernel, c.stride, c.expansion, c.se_ratio, c.skip, c.repeats)
        assert c.out_filters == round(b.out_filters * 0.5)


def test_shapes10_is_balanced_deterministic_and_seeded():
    a, b, c = shapes10(16, 100, 20, seed=0), shapes10(16, 100, 20, seed=0), shapes10(16, 100, 20, seed=1)
    assert a.x_train.shape == (100, 16, 16, 3) and a.x_test.shape == (20, 16, 16, 3) and a.num_classes == 10
    assert np.bincount(a.y_train).tolist() == [10] * 10
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train[:20], a.x_test)  # the held-out split is drawn separately


def _image_folder(root, classes: dict[str, float], per_class: int = 12):
    rng = np.random.default_rng(0)
    for name, level in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(level + rng.normal(0, 20, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_image_folder_is_split_per_class_and_resized(tmp_path):
    data = load_image_folder(_image_folder(tmp_path / "imgs", {"dark": 40, "light": 210}), resolution=8)
    assert data.classes == ("dark", "light")
    assert data.x_train.shape[1:] == (8, 8, 3) and len(data.y_test) == 4 and len(data.y_train) == 20
    assert data.x_train.min() >= -1 and data.x_train.max() <= 1


@pytest.mark.parametrize("make,fragment", [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: _image_folder(root / "one", {"only": 100}), "1 class folder"),
])
def test_bad_image_folders_are_refused_with_the_fix(tmp_path, make, fragment):
    with pytest.raises(DataError) as exc:
        load_image_folder(make(tmp_path))
    assert fragment in str(exc.value) and "--data DIR" in str(exc.value)


def test_proxy_training_reaches_high_held_out_accuracy_on_an_easy_folder(tmp_path):
    """A real (tiny) Keras training run: dark vs light images are separable, held-out accuracy must show it."""
    folder = _image_folder(tmp_path / "imgs", {"dark": 30, "light": 220}, per_class=20)
    est = ProxyTrainEstimator(data=folder, resolution=16, width=1.0, epochs=8, batch_size=8, learning_rate=1e-2)
    tiny = parse_arch("res16_stem8_head16_cls10_relu:ds_r1_k3_s1_i8_o8_noskip:ir_r1_k3_s2_e3_i8_o16")
    assert est(tiny) >= 0.9
    assert "2 classes" in est.describe() and "held-out" in est.describe()


def test_user_callables_are_loaded_by_name(tmp_path, monkeypatch):
    (tmp_path / "my_scores.py").write_text(
        "def by_depth(arch):\n    return float(arch.num_layers)\n"
        "class Team:\n    @staticmethod\n    def score(arch):\n        return 0.5\n"
        "NOT_CALLABLE = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    a1 = parse_arch("mnasnet-a1")
    assert make_estimator("python:my_scores:by_depth")(a1) == a1.num_layers
    assert CallableEstimator("python:my_scores:Team.score")(a1) == 0.5
    assert not CallableEstimator("python:my_scores:by_depth").is_proxy


@pytest.mark.parametrize("spec,fragment", [
    ("python:my_scores", "malformed"),
    ("python::f", "malformed"),
    ("python:my scores:f", "malformed"),
    ("python:no_such_module_xyz:f", "cannot import module"),
    ("python:my_scores:missing", "no attribute"),
    ("python:my_scores:NOT_CALLABLE", "not a function"),
    ("accuracy-from-the-future", "unknown accuracy estimator"),
])
def test_bad_estimator_names_are_refused_with_the_fix(tmp_path, monkeypatch, spec, fragment):
    (tmp_path / "my_scores.py").write_text("NOT_CALLABLE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EstimatorError) as exc:
        make_estimator(spec)
    message = str(exc.value)
    assert fragment in message and "\n" not in message and isinstance(exc.value, LatprofError)
    assert "python:MODULE:FUNCTION" in message or "PYTHONPATH" in message or "function" in message


def test_data_folder_only_goes_with_proxy_training(tmp_path):
    with pytest.raises(EstimatorError, match="only used by --accuracy proxy-train"):
        make_estimator("zero-cost", data=tmp_path)


def test_zero_cost_estimator_scores_nasbench201_cells_by_their_graph():
    nb = get_space("nasbench201")
    estimator = ZeroCostEstimator(batch_size=16)
    convs = nb.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    skips = nb.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    score = estimator(convs)
    assert np.isfinite(score) and score == estimator(convs)  # the same candidate always gets the same weights
    # A cell of identities has only the stem, the reduction blocks and the head to separate the images.
    assert score > estimator(skips)
    with pytest.raises(EstimatorError, match="32x32"):
        ZeroCostEstimator(batch_size=4, resolution=64)(convs)
