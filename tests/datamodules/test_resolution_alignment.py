"""Resolution alignment augmentation (RAA)."""

import math

import cv2
import numpy as np
import pytest

from datamodules.resolution_alignment import RAASettings, ResolutionAlignment
from datamodules.transforms import TrainAugmentation

BLOCK = 48


def _blocky(rows: int = 4, cols: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A label of BLOCK-sized squares of random classes 1..8 and the image 25 * label (3 bands)."""
    classes = np.random.default_rng(seed).integers(1, 9, size=(rows, cols)).astype(np.uint8)
    label = np.kron(classes, np.ones((BLOCK, BLOCK), np.uint8))
    image = np.repeat((label * 25)[..., None], 3, axis=2)
    return image, label


def _texture(size: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def _mean_abs_laplacian(image: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F)).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_size_is_u_times_the_input_size(seed: int) -> None:
    image, label = _blocky()
    raa = ResolutionAlignment(RAASettings(p=1.0))
    r, u = raa.sample(np.random.default_rng(seed))  # type: ignore[misc]
    out_image, out_label = raa(image, label, np.random.default_rng(seed))
    expected = (round(u * label.shape[0]), round(u * label.shape[1]))
    assert out_image.shape == (*expected, 3) and out_image.dtype == np.uint8
    assert out_label.shape == expected and out_label.dtype == np.uint8
    assert 0.1 <= r <= 0.35 and 1.0 <= u <= 3.0


def test_fixed_factors_give_rounded_sizes() -> None:
    image, label = np.zeros((50, 70, 3), np.uint8), np.zeros((50, 70), np.uint8)
    raa = ResolutionAlignment(RAASettings(p=1.0, downsample_range=(0.2, 0.2), upsample_range=(1.3, 1.3)))
    out_image, out_label = raa(image, label, np.random.default_rng(0))
    assert out_image.shape == (65, 91, 3) and out_label.shape == (65, 91)


@pytest.mark.parametrize("down_interpolation", ["linear", "area"])
@pytest.mark.parametrize("seed", [0, 3])
def test_image_and_label_stay_aligned(seed: int, down_interpolation: str) -> None:
    image, label = _blocky(seed=seed)
    raa = ResolutionAlignment(RAASettings(p=1.0, down_interpolation=down_interpolation))  # type: ignore[arg-type]
    r, u = raa.sample(np.random.default_rng(seed))  # type: ignore[misc]
    out_image, out_label = raa(image, label, np.random.default_rng(seed))
    # A pixel is reproduced exactly when its label is uniform over the resampling footprint:
    # one low-resolution pixel (1/r input pixels) plus the interpolation taps, in output pixels.
    radius = math.ceil(u * (1.0 / r + 2.0))
    window = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    uniform = cv2.erode(out_label, window) == cv2.dilate(out_label, window)
    assert uniform.mean() > 0.1  # the check below covers a real share of the image
    expected = out_label[uniform].astype(np.int16) * 25
    for band in range(3):
        assert np.abs(out_image[..., band][uniform].astype(np.int16) - expected).max() <= 1
    assert set(np.unique(out_label)) <= set(np.unique(label))


@pytest.mark.parametrize("down_interpolation", ["linear", "area"])
def test_lowers_high_frequency_energy(down_interpolation: str) -> None:
    image = _texture()
    label = np.zeros(image.shape[:2], np.uint8)
    raa = ResolutionAlignment(RAASettings(p=1.0, down_interpolation=down_interpolation))  # type: ignore[arg-type]
    for seed in range(3):
        out_image, _ = raa(image, label, np.random.default_rng(seed))
        # Same final size without the downsample: only the resolution loss differs.
        reference = cv2.resize(image, out_image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        assert _mean_abs_laplacian(out_image) < 0.5 * _mean_abs_laplacian(reference)


@pytest.mark.parametrize("seed", range(5))
def test_p0_is_identity(seed: int) -> None:
    image, label = _blocky()
    out_image, out_label = ResolutionAlignment(RAASettings(p=0.0))(image, label, np.random.default_rng(seed))
    assert np.array_equal(out_image, image) and np.array_equal(out_label, label)


def test_applies_with_probability_p() -> None:
    image, label = np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.uint8)
    raa = ResolutionAlignment(RAASettings(p=0.2, upsample_range=(2.0, 2.0)))
    rng = np.random.default_rng(0)
    applied = [raa(image, label, rng)[1].shape != label.shape for _ in range(2000)]
    assert 0.17 < np.mean(applied) < 0.23


def test_keeps_a_single_band_layout() -> None:
    label = np.zeros((40, 40), np.uint8)
    raa = ResolutionAlignment(RAASettings(p=1.0, upsample_range=(1.5, 1.5)))
    out3, _ = raa(np.zeros((40, 40, 1), np.uint8), label, np.random.default_rng(0))
    out2, _ = raa(np.zeros((40, 40), np.uint8), label, np.random.default_rng(0))
    assert out3.shape == (60, 60, 1) and out2.shape == (60, 60)


def test_works_as_a_before_crop_step() -> None:
    image, label = _blocky(rows=2, cols=2)
    augment = TrainAugmentation(crop_size=64, before_crop=[ResolutionAlignment(RAASettings(p=1.0))], seed=0)
    out_image, out_label = augment(image, label)
    assert out_image.shape == (64, 64, 3) and out_label.shape == (64, 64)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": 1.5}, "p must be"),
        ({"p": -0.1}, "p must be"),
        ({"downsample_range": (0.0, 0.3)}, "downsample_range"),
        ({"downsample_range": (0.4, 0.2)}, "downsample_range"),
        ({"downsample_range": (0.5, 1.5)}, "downsample_range"),
        ({"downsample_range": (0.1,)}, "downsample_range"),
        ({"upsample_range": (0.0, 2.0)}, "upsample_range"),
        ({"upsample_range": (3.0, 1.0)}, "upsample_range"),
        ({"down_interpolation": "cubic"}, "down_interpolation"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ResolutionAlignment(RAASettings(**kwargs))


def test_rejects_mismatched_image_and_label() -> None:
    with pytest.raises(ValueError, match="sizes differ"):
        raa = ResolutionAlignment(RAASettings(p=1.0))
        raa(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.uint8), np.random.default_rng(0))
