"""Training augmentation: geometric steps, the class-capped crop, reseeding."""

import numpy as np

from datamodules.transforms import TrainAugmentation, capped_random_crop


def _striped_label(size: int = 64) -> np.ndarray:
    """Mostly class 1 with a narrow band of class 2: most random crops exceed a 0.75 cap."""
    label = np.ones((size, size), np.uint8)
    label[:, 50:58] = 2
    return label


def test_capped_crop_respects_cap_when_a_window_allows_it() -> None:
    label = _striped_label()
    image = label[..., None].repeat(3, axis=2)
    rng = np.random.default_rng(0)
    ratios_capped, ratios_free = [], []
    for _ in range(200):
        _, crop = capped_random_crop(image, label, rng, 16, 0.75, (255,), attempts=50)
        ratios_capped.append(np.bincount(crop.ravel()).max() / crop.size)
        _, crop = capped_random_crop(image, label, rng, 16, 1.0, (255,))
        ratios_free.append(np.bincount(crop.ravel()).max() / crop.size)
    assert max(ratios_capped) < 0.75
    assert np.mean(np.array(ratios_free) == 1.0) > 0.5  # without the cap most crops are one class


def test_capped_crop_ignores_ignored_values() -> None:
    label = np.zeros((32, 32), np.uint8)  # all "ignored" except a small mixed patch
    label[:8, :8] = 3
    label[:8, :4] = 4
    image = np.zeros((32, 32, 1), np.uint8)
    _, crop = capped_random_crop(image, label, np.random.default_rng(1), 16, 0.75, (0,), attempts=100)
    assert {3, 4} <= set(np.unique(crop))


def test_augmentation_keeps_image_and_label_aligned() -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(1, 9, (10, 12)).astype(np.uint8).repeat(16, 0).repeat(16, 1)  # 160 x 192, 16 px blocks
    image = (label * 20)[..., None]  # image is a function of the label
    augment = TrainAugmentation(
        96, scale_range=(0.5, 2.0), cat_max_ratio=0.75, ignore_values=(0, 255), pad_label=0, seed=3
    )
    for _ in range(20):
        out_image, out_label = augment(image, label)
        assert out_image.shape == (96, 96, 1) and out_label.shape == (96, 96)
        valid = out_label > 0
        # Bilinear resampling blurs block edges; away from edges the image still encodes the label.
        agree = np.abs(out_image[..., 0][valid].astype(int) - out_label[valid].astype(int) * 20) <= 1
        assert agree.mean() > 0.8


def test_augmentation_pads_small_tiles_with_pad_label() -> None:
    label = np.full((20, 20), 5, np.uint8)
    image = np.full((20, 20, 1), 200, np.uint8)
    augment = TrainAugmentation(64, scale_range=(1.0, 1.0), pad_label=0, ignore_values=(0,), seed=0)
    out_image, out_label = augment(image, label)
    assert out_label.shape == (64, 64)
    assert (out_label == 0).sum() == 64 * 64 - 400
    assert (out_image[out_label == 0] == 0).all()


def test_augmentation_is_reproducible_after_reseed() -> None:
    label = _striped_label(80)
    image = np.random.default_rng(0).integers(0, 255, (80, 80, 1), np.uint8)
    augment = TrainAugmentation(32, seed=7)
    first = [augment(image, label)[0] for _ in range(3)]
    augment.reseed(7)
    second = [augment(image, label)[0] for _ in range(3)]
    for a, b in zip(first, second, strict=False):
        np.testing.assert_array_equal(a, b)


def test_without_rescale_flips_or_class_cap_a_crop_is_a_window_of_the_tile() -> None:
    """The contest baseline's augmentation: pad + random crop, nothing else."""
    image = np.arange(64 * 64, dtype=np.int64).reshape(64, 64, 1).astype(np.float32)  # every pixel unique
    label = np.zeros((64, 64), np.uint8)
    augment = TrainAugmentation(24, scale_range=(1.0, 1.0), cat_max_ratio=1.0, flip_rotate=False, seed=0)
    for _ in range(10):
        crop, _ = augment(image, label)
        top, left = divmod(int(crop[0, 0, 0]), 64)
        np.testing.assert_array_equal(crop, image[top : top + 24, left : left + 24])


def test_steps_after_the_crop_see_the_crop_and_are_cropped_back() -> None:
    """The reference runs RAA after the first crop; its enlarged output is cropped back to the crop size."""
    seen: list[tuple[int, ...]] = []

    def enlarge(image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        seen.append(image.shape)
        return image.repeat(2, 0).repeat(2, 1), label.repeat(2, 0).repeat(2, 1)

    label = _striped_label(80)
    image = np.random.default_rng(0).integers(0, 255, (80, 80, 1), np.uint8)
    augment = TrainAugmentation(32, after_crop=[enlarge], seed=1)
    out_image, out_label = augment(image, label)
    assert seen == [(32, 32, 1)]
    assert out_image.shape == (32, 32, 1) and out_label.shape == (32, 32)
    # Every 2 x 2 block of the enlarged crop is one source pixel: the output is made of such blocks.
    assert (out_image[:, :, 0] == np.roll(out_image[:, :, 0], -1, 0)).mean() >= 0.45
