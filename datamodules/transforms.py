"""Training augmentation (albumentations + a class-capped crop) and input normalisation."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network look-up on import

import albumentations as A
import cv2
import numpy as np
import torch

NormalisationMode = Literal["divide_255", "imagenet", "custom"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ImageTransform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class Normaliser:
    """Turn a batch of raw pixel values (0..255) into the float input a model expects.

    Modes: ``divide_255`` (the contest baseline: x / 255), ``imagenet`` (x / 255 then ImageNet
    mean/std, as the reference code feeds SAR), ``custom`` (``(x - mean) / std`` with mean/std in
    raw pixel units, one value per model input channel). A 1-band input is replicated to
    ``in_channels`` channels.
    """

    def __init__(
        self,
        mode: NormalisationMode = "divide_255",
        in_channels: int = 1,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if mode == "custom":
            if mean is None or std is None:
                raise ValueError("normalisation 'custom' needs both mean and std")
            if len(mean) != in_channels or len(std) != in_channels:
                raise ValueError(f"custom mean/std need {in_channels} value(s) each, got {mean} and {std}")
            mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        elif mode == "imagenet":
            stats = (IMAGENET_MEAN, IMAGENET_STD) if in_channels == 3 else (IMAGENET_MEAN[:1], IMAGENET_STD[:1])
            mean_t = torch.tensor(stats[0]) * 255.0
            std_t = torch.tensor(stats[1]) * 255.0
            if in_channels not in (1, 3):
                raise ValueError(f"normalisation 'imagenet' needs in_channels 1 or 3, got {in_channels}")
        else:
            mean_t, std_t = torch.zeros(in_channels), torch.full((in_channels,), 255.0)
        self.in_channels = in_channels
        self.mean = mean_t.view(1, -1, 1, 1)
        self.std = std_t.view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise an (N, C, H, W) batch of raw pixels to float32 model input."""
        channels = images.shape[1]
        if channels == 1 and self.in_channels != 1:
            images = images.expand(-1, self.in_channels, -1, -1)
        elif channels != self.in_channels:
            raise ValueError(f"images have {channels} channel(s) but the model expects {self.in_channels}")
        x = images.float()
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


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

    Steps: random rescale in ``scale_range`` (bilinear image, nearest label), padding to the crop
    size (image 0, label ``pad_label``), a random crop with the single-class cap, flips and rot90.
    Extra steps (e.g. the resolution alignment augmentation) run before the crop via ``before_crop``.
    """

    def __init__(
        self,
        crop_size: int,
        scale_range: tuple[float, float] = (0.5, 2.0),
        cat_max_ratio: float = 0.75,
        ignore_values: Sequence[int] = (255,),
        pad_label: int = 255,
        before_crop: Sequence[ImageTransform] = (),
        seed: int | None = None,
    ) -> None:
        self.crop_size = crop_size
        self.cat_max_ratio = cat_max_ratio
        self.ignore_values = tuple(ignore_values)
        self.before_crop = tuple(before_crop)
        self.rescale_and_pad = A.Compose(
            [
                A.RandomScale(
                    scale_limit=(scale_range[0] - 1.0, scale_range[1] - 1.0),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST,
                    p=1.0,
                ),
                A.PadIfNeeded(
                    min_height=crop_size,
                    min_width=crop_size,
                    position="top_left",
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=pad_label,
                ),
            ]
        )
        self.flip_rotate = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)])
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
        return out["image"], out["mask"]


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
