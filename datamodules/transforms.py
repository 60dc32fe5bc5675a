"""Training augmentation: albumentations geometric steps, a class-capped crop, photometric distortion."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network look-up on import

import albumentations as A
import cv2
import numpy as np

ImageTransform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def capped_random_crop(
    image: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    size: int,
    cat_max_ratio: float,
    ignore_values: Sequence[int],
    attempts: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Random ``size`` x ``size`` crop in which no single class covers more than ``cat_max_ratio``.

    Tries up to ``attempts`` windows and keeps the last one if none qualifies (mmseg semantics).
    Ignored values do not count towards the class fractions. Inputs must be at least ``size``.
    """
    height, width = label.shape
    top = left = 0
    for _ in range(attempts):
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        if cat_max_ratio >= 1.0:
            break
        window = label[top : top + size, left : left + size]
        counts = np.bincount(window.ravel(), minlength=256)
        counts[list(ignore_values)] = 0
        present = counts[counts > 0]
        if len(present) > 1 and present.max() / present.sum() < cat_max_ratio:
            break
    return image[top : top + size, left : left + size], label[top : top + size, left : left + size]


class TrainAugmentation:
    """Geometric training augmentation of an (H, W, C) image and its (H, W) label.

    Steps: ``before_crop`` steps (e.g. photometric distortion), a random rescale in ``scale_range``
    (bilinear image, nearest label; skipped when the range is (1, 1)), padding to the crop size
    (image 0, label ``pad_label``), a random crop with the single-class cap, flips and rot90 (unless
    ``flip_rotate`` is off), then ``after_crop`` steps (the reference runs its resolution alignment
    augmentation there), each followed by a padding and a plain random crop back to the crop size.
    """

    def __init__(
        self,
        crop_size: int,
        scale_range: tuple[float, float] = (0.5, 2.0),
        cat_max_ratio: float = 0.75,
        ignore_values: Sequence[int] = (255,),
        pad_label: int = 255,
        before_crop: Sequence[ImageTransform] = (),
        after_crop: Sequence[ImageTransform] = (),
        flip_rotate: bool = True,
        seed: int | None = None,
    ) -> None:
        self.crop_size = crop_size
        self.cat_max_ratio = cat_max_ratio
        self.ignore_values = tuple(ignore_values)
        self.before_crop = tuple(before_crop)
        self.after_crop = tuple(after_crop)
        pad = A.PadIfNeeded(
            min_height=crop_size,
            min_width=crop_size,
            position="top_left",
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=pad_label,
        )
        rescale = A.RandomScale(
            scale_limit=(scale_range[0] - 1.0, scale_range[1] - 1.0),
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST,
            p=1.0,
        )
        self.rescale_and_pad = A.Compose([pad] if tuple(scale_range) == (1.0, 1.0) else [rescale, pad])
        self.pad = A.Compose([pad])
        flips = [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)] if flip_rotate else []
        self.flip_rotate = A.Compose(flips)
        self.rng = np.random.default_rng(seed)
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Seed every random step (call once per data-loader worker for reproducible runs)."""
        self.rng = np.random.default_rng(seed)
        if seed is not None:
            self.rescale_and_pad.set_random_seed(seed)
            self.flip_rotate.set_random_seed(seed + 1)

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Augment one (H, W, C) image and (H, W) label; returns crop-sized arrays."""
        for step in self.before_crop:
            image, label = step(image, label, self.rng)
        out = self.rescale_and_pad(image=image, mask=label)
        image, label = capped_random_crop(
            out["image"], out["mask"], self.rng, self.crop_size, self.cat_max_ratio, self.ignore_values
        )
        out = self.flip_rotate(image=np.ascontiguousarray(image), mask=np.ascontiguousarray(label))
        image, label = out["image"], out["mask"]
        for step in self.after_crop:
            image, label = step(image, label, self.rng)
            out = self.pad(image=image, mask=label)
            image, label = capped_random_crop(
                out["image"], out["mask"], self.rng, self.crop_size, 1.0, self.ignore_values
            )
        return np.ascontiguousarray(image), np.ascontiguousarray(label)


class PhotometricDistortion:
    """Source-only colour distortion as a ``before_crop`` step, so the padding added later stays black.

    Defaults approximate mmseg's PhotoMetricDistortion (brightness delta 32 of 255, contrast and
    saturation 0.5-1.5, hue delta 18 of OpenCV's 180) with albumentations' ColorJitter, applied
    with probability ``p``. Its randomness is drawn from the pipeline's generator.
    """

    def __init__(
        self,
        brightness: float = 0.125,
        contrast: float = 0.5,
        saturation: float = 0.5,
        hue: float = 0.1,
        p: float = 0.5,
    ) -> None:
        self.jitter = A.ColorJitter(
            brightness=(1 - brightness, 1 + brightness),
            contrast=(1 - contrast, 1 + contrast),
            saturation=(1 - saturation, 1 + saturation),
            hue=(-hue, hue),
            p=p,
        )

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Distort the colours of an (H, W, 3) uint8 image; the label passes through."""
        self.jitter.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        return self.jitter(image=image)["image"], label
