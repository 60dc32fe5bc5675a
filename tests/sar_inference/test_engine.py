"""Sliding-window inference, test-time augmentation, ensembles and soft pseudo-labels."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from sar_inference.engine import (
    agreement,
    ensemble_probs,
    probs_to_label,
    sliding_window_probs,
    soft_ensemble_labels,
    soft_to_uint8,
    tta_probs,
    uint8_to_soft,
    window_positions,
)

NUM_CLASSES = 5


@pytest.fixture
def pointwise() -> nn.Module:
    """A 1x1 convolution: translation- and flip-equivariant, so windows cannot change its output."""
    torch.manual_seed(0)
    return nn.Conv2d(2, NUM_CLASSES, kernel_size=1).eval()


def whole_image_probs(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(image[None]).softmax(dim=1)[0]


@pytest.mark.parametrize(
    ("length", "window", "stride"),
    [(64, 32, 16), (70, 32, 16), (33, 32, 32), (100, 32, 7), (20, 32, 16), (32, 32, 16), (5, 1, 1)],
)
def test_window_positions_cover_the_axis_and_end_at_the_border(length: int, window: int, stride: int) -> None:
    positions = window_positions(length, window, stride)
    assert positions[0] == 0
    assert positions == sorted(set(positions))
    covered = torch.zeros(max(length, window), dtype=torch.int32)
    for start in positions:
        covered[start : start + window] += 1
    assert bool((covered[:length] > 0).all())
    if length >= window:
        assert positions[-1] + window == length
        assert all(b - a <= stride for a, b in itertools.pairwise(positions))
    else:
        assert positions == [0]


def test_window_positions_examples() -> None:
    assert window_positions(64, 32, 16) == [0, 16, 32]
    assert window_positions(70, 32, 16) == [0, 16, 32, 38]
    assert window_positions(10, 32, 16) == [0]


@pytest.mark.parametrize(("height", "width"), [(64, 64), (70, 53), (20, 25), (20, 70)])
@pytest.mark.parametrize("blend", ["mean", "gaussian"])
def test_sliding_window_matches_whole_image_for_a_pointwise_model(
    pointwise: nn.Module, height: int, width: int, blend: str
) -> None:
    image = torch.randn(2, height, width, generator=torch.Generator().manual_seed(1))
    probs = sliding_window_probs(pointwise, image, NUM_CLASSES, window=32, stride=16, batch_size=3, blend=blend)
    assert probs.shape == (NUM_CLASSES, height, width)
    assert probs.dtype == torch.float32
    assert (probs - whole_image_probs(pointwise, image)).abs().max() < 1e-5


def test_batched_windows_equal_one_window_at_a_time() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)).eval()
    image = torch.randn(1, 1, 45, 61)
    batched = sliding_window_probs(model, image, 3, window=16, stride=8, batch_size=8)
    single = sliding_window_probs(model, image, 3, window=16, stride=8, batch_size=1)
    assert (batched - single).abs().max() < 1e-6


def test_every_pixel_is_covered_and_batches_respect_batch_size() -> None:
    batch_sizes: list[int] = []

    def constant(batch: torch.Tensor) -> torch.Tensor:
        batch_sizes.append(batch.shape[0])
        logits = torch.zeros(batch.shape[0], 4, *batch.shape[-2:])
        logits[:, 2] = 3.0
        return logits

    probs = sliding_window_probs(constant, torch.randn(1, 50, 77), 4, window=16, stride=12, batch_size=5)
    expected = torch.softmax(torch.tensor([0.0, 0.0, 3.0, 0.0]), dim=0)
    assert torch.isfinite(probs).all() and (probs > 0).all()
    assert torch.allclose(probs, expected[:, None, None].expand_as(probs))
    windows = len(window_positions(50, 16, 12)) * len(window_positions(77, 16, 12))
    assert sum(batch_sizes) == windows
    assert max(batch_sizes) == 5


def test_flip_tta_leaves_a_pointwise_model_unchanged(pointwise: nn.Module) -> None:
    image = torch.randn(2, 40, 37)
    plain = sliding_window_probs(pointwise, image, NUM_CLASSES, window=16, stride=8)
    flipped = tta_probs(pointwise, image, NUM_CLASSES, window=16, stride=8, flips=("none", "h", "v"))
    assert (plain - flipped).abs().max() < 1e-5


def test_single_identity_view_equals_sliding_window(pointwise: nn.Module) -> None:
    image = torch.randn(1, 2, 40, 37)
    plain = sliding_window_probs(pointwise, image, NUM_CLASSES, window=16, stride=8, blend="gaussian")
    tta = tta_probs(
        pointwise, image, NUM_CLASSES, window=16, stride=8, scales=(1.0,), flips=("none",), blend="gaussian"
    )
    assert torch.equal(plain, tta)


def test_multiscale_tta_returns_probabilities_at_the_input_size(pointwise: nn.Module) -> None:
    image = torch.randn(2, 41, 30)
    probs = tta_probs(pointwise, image, NUM_CLASSES, window=16, stride=8, scales=(0.5, 0.75, 1.75), flips=("none", "h"))
    assert probs.shape == (NUM_CLASSES, 41, 30)
    assert torch.allclose(probs.sum(dim=0), torch.ones(41, 30), atol=1e-5)


def test_ensemble_against_a_hand_computation() -> None:
    a = torch.tensor([0.6, 0.3, 0.1])[:, None, None].expand(3, 1, 2).clone()
    b = torch.tensor([[[0.7, 0.1]], [[0.1, 0.1]], [[0.2, 0.8]]])
    scores = ensemble_probs([a, b], model_weights=[2.0, 1.0], class_weights=[0.0, 1.0, 1.5])
    expected = torch.tensor(
        [[[0.0, 0.0]], [[2 * 0.3 + 0.1, 2 * 0.3 + 0.1]], [[(2 * 0.1 + 0.2) * 1.5, (2 * 0.1 + 0.8) * 1.5]]]
    )
    assert torch.allclose(scores, expected)
    assert probs_to_label(scores).tolist() == [[1, 2]]
    assert probs_to_label(scores).dtype == torch.uint8


def test_zero_class_weight_means_class_zero_never_wins() -> None:
    probs = torch.softmax(torch.randn(2, 9, 8, 8) + torch.tensor([5.0] + [0.0] * 8)[:, None, None], dim=1)
    label = probs_to_label(ensemble_probs(list(probs), class_weights=[0.0] + [1.0] * 8))
    assert probs_to_label(ensemble_probs(list(probs))).eq(0).all()
    assert label.ne(0).all()


def test_a_zero_weight_class_never_wins_even_on_a_tie_of_zeros() -> None:
    # uint8 soft maps put all 255 on class 0 where a model is sure of it: classes 1..8 all score 0.
    soft = torch.zeros(9, 1, 2)
    soft[0, 0, 0], soft[0, 0, 1], soft[6, 0, 1] = 1.0, 0.5, 0.2
    assert probs_to_label(soft * torch.tensor([0.0] + [1.0] * 8)[:, None, None]).tolist() == [[0, 6]]  # the tie
    assert probs_to_label(soft, class_weights=[0.0] + [1.0] * 8).tolist() == [[1, 6]]
    assert probs_to_label(soft, class_weights=[1.0] * 8 + [2.0]).tolist() == [[0, 0]]


def test_soft_uint8_floor_semantics_and_round_trip() -> None:
    probs = torch.tensor([0.0, 0.5, 0.999, 1.0, 1 / 255, 0.0039, 1.2, -0.1])
    assert soft_to_uint8(probs).tolist() == [0, 127, 254, 255, 1, 0, 255, 0]
    every = torch.arange(256, dtype=torch.uint8)
    assert uint8_to_soft(every).dtype == torch.float32
    assert torch.equal(soft_to_uint8(uint8_to_soft(every)), every)


def test_agreement_keeps_only_equal_labels() -> None:
    a = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.uint8)
    b = torch.tensor([[1, 0, 3], [5, 5, 8]], dtype=torch.uint8)
    assert agreement(a, b).tolist() == [[1, 0, 3], [0, 5, 0]]
    assert agreement(a, b, ignore=255).tolist() == [[1, 255, 3], [255, 5, 255]]


def test_soft_ensemble_sums_without_uint8_overflow() -> None:
    # Pixel 0: class 0 sums to 400 and beats class 1's 355 (a uint8 sum would wrap 400 to 144).
    first = torch.tensor([[[200, 10]], [[255, 250]]], dtype=torch.uint8)
    second = torch.tensor([[[200, 0]], [[100, 5]]], dtype=torch.uint8)
    assert soft_ensemble_labels([first, second]).tolist() == [[0, 1]]
    assert soft_ensemble_labels([first]).tolist() == [[1, 1]]


@pytest.mark.parametrize(
    ("window", "stride", "message"),
    [
        (16, 17, "must not exceed window"),
        (16, 0, "stride must be positive"),
        (0, 1, "window must be positive"),
        (-4, 1, "window must be positive"),
    ],
)
def test_invalid_window_arguments_raise(pointwise: nn.Module, window: int, stride: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sliding_window_probs(pointwise, torch.zeros(2, 8, 8), NUM_CLASSES, window=window, stride=stride)
    with pytest.raises(ValueError, match=message):
        window_positions(8, window, stride)


def test_other_invalid_arguments_raise(pointwise: nn.Module) -> None:
    image = torch.zeros(2, 8, 8)
    with pytest.raises(ValueError, match="batch_size"):
        sliding_window_probs(pointwise, image, NUM_CLASSES, window=8, stride=4, batch_size=0)
    with pytest.raises(ValueError, match="blend"):
        sliding_window_probs(pointwise, image, NUM_CLASSES, window=8, stride=4, blend="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        sliding_window_probs(pointwise, torch.zeros(2, 2, 8, 8), NUM_CLASSES, window=8, stride=4)
    with pytest.raises(ValueError, match="model returned shape"):
        sliding_window_probs(pointwise, image, NUM_CLASSES + 1, window=8, stride=4)
    with pytest.raises(ValueError, match="scales must be positive"):
        tta_probs(pointwise, image, NUM_CLASSES, window=8, stride=4, scales=(1.0, 0.0))
    with pytest.raises(ValueError, match="flips must be among"):
        tta_probs(pointwise, image, NUM_CLASSES, window=8, stride=4, flips=("d",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        ensemble_probs([])
    with pytest.raises(ValueError, match="model weights"):
        ensemble_probs([torch.zeros(3, 2, 2)], model_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="class weights"):
        ensemble_probs([torch.zeros(3, 2, 2)], class_weights=[1.0])
    with pytest.raises(ValueError, match="shape"):
        agreement(torch.zeros(2, 2), torch.zeros(2, 3))


def test_whole_tile_views_equal_one_forward_pass_of_each_flipped_view() -> None:
    torch.manual_seed(0)
    model = nn.Conv2d(2, NUM_CLASSES, kernel_size=3, padding=1).eval()  # not flip-equivariant
    image = torch.randn(2, 20, 28)
    probs = tta_probs(model, image, NUM_CLASSES, window=None, stride=1, flips=("none", "h", "v", "hv"))
    views = [(), (-1,), (-2,), (-2, -1)]
    expected = sum(whole_image_probs(model, image.flip(d)).flip(d) for d in views) / 4
    torch.testing.assert_close(probs, expected)
    # "hv" is its own view: both axes at once, not h or v alone.
    both = tta_probs(model, image, NUM_CLASSES, window=None, stride=1, flips=("hv",))
    torch.testing.assert_close(both, whole_image_probs(model, image.flip(-2, -1)).flip(-2, -1))
    assert not torch.allclose(both, tta_probs(model, image, NUM_CLASSES, window=None, stride=1, flips=("h",)))
