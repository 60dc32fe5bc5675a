"""Fairness check of the synthetic dataset: how hard are its SAR, its domain gap and its noisy labels?

Generates the default synthetic data (and a control with ``domain_gap=0``) in a temporary folder and
prints: generation time, class proportions, exact-zero share of the SAR, agreement of the noisy train
labels with the truth, the quality of what the optical partners show (taken at another date), how
well trivial per-pixel classifiers do on SAR (nearest class mean of the 5x5-averaged amplitude) and
across the optical domain gap (nearest class mean of RGB, fitted on OEM).
Scores are mIoU over classes 1..8 with the official counting (0-labelled pixels count as false
positives). Run: ``python benchmarks/synthetic_data_check.py [--seed N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from datamodules.classes import CLASS_NAMES, NUM_CLASSES, SCORED_CLASSES
from datamodules.layout import OEM_DIR, OEM_SAR_DIR
from datamodules.rasters import read_label, read_raster
from datamodules.resolution_alignment import RAASettings, ResolutionAlignment
from sar_synthetic.config import SyntheticConfig
from sar_synthetic.layout_writer import generate_demo_data


def confusion(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """A NUM_CLASSES x NUM_CLASSES confusion matrix (rows: truth, columns: prediction)."""
    index = truth.astype(np.int64) * NUM_CLASSES + pred.astype(np.int64)
    return np.bincount(index, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU of every class (NaN where a class is absent from truth and prediction)."""
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / union


def miou(matrix: np.ndarray) -> float:
    """Mean IoU over the scored classes 1..8."""
    return float(np.nanmean(class_iou(matrix)[list(SCORED_CLASSES)]))


def nearest_mean_fit(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Class means (one row per class 0..8; NaN for class 0 and absent classes)."""
    means = np.full((NUM_CLASSES, features.shape[1]), np.nan)
    for cls in SCORED_CLASSES:
        if (labels == cls).any():
            means[cls] = features[labels == cls].mean(0)
    return means


def nearest_mean_predict(features: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Class of the nearest class mean for every feature row."""
    dist = ((features[:, None, :] - means[None]) ** 2).sum(-1)
    return np.nanargmin(np.where(np.isnan(dist), np.inf, dist), axis=1)


def sar_features(sar: np.ndarray, with_std: bool) -> np.ndarray:
    """Per-pixel 5x5 box mean (and optionally 5x5 standard deviation) of the SAR amplitude."""
    x = sar.astype(np.float64)
    mean = ndimage.uniform_filter(x, 5)
    if not with_std:
        return mean.reshape(-1, 1)
    std = np.sqrt(np.maximum(ndimage.uniform_filter(x * x, 5) - mean**2, 0))
    return np.stack([mean.ravel(), std.ravel()], 1)


Pairs = list[tuple[np.ndarray, np.ndarray]]
Featuriser = Callable[[np.ndarray], np.ndarray]


def load_pairs(folder: Path, image_dir: str, label_dir: str, bands: int) -> Pairs:
    """(image, label) pairs of every image in ``folder/image_dir`` that has a label."""
    pairs = []
    for path in sorted((folder / image_dir).glob("*.tif")):
        pairs.append((read_raster(path, bands=bands), read_label(folder / label_dir / path.name)))
    return pairs


def oem_pairs(root: Path, split: str) -> Pairs:
    """(RGB, label) pairs of one OEM split."""
    oem = root / OEM_DIR
    pairs = []
    for name in (oem / f"{split}.txt").read_text().split():
        region = name.rsplit("_", 1)[0]
        image = read_raster(oem / region / "images" / name, bands=3)
        pairs.append((image, read_label(oem / region / "labels" / name)))
    return pairs


def stack(pairs: Pairs, featurise: Featuriser) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of all pairs, concatenated."""
    feats = [featurise(image) for image, _ in pairs]
    return np.concatenate(feats), np.concatenate([label.ravel() for _, label in pairs])


def rgb_features(image: np.ndarray) -> np.ndarray:
    """Per-pixel RGB."""
    return image.reshape(3, -1).T.astype(np.float64)


def score(train: Pairs, test: Pairs, featurise: Featuriser) -> np.ndarray:
    """Confusion matrix of a nearest-class-mean classifier fitted on ``train`` and applied to ``test``."""
    x, y = stack(train, featurise)
    means = nearest_mean_fit(x, y)
    xt, yt = stack(test, featurise)
    return confusion(yt, nearest_mean_predict(xt, means))


def per_class_line(matrix: np.ndarray) -> str:
    """Per-class IoU of classes 1..8 as a compact string."""
    iou = class_iou(matrix)
    return ", ".join(f"{CLASS_NAMES[c]} {iou[c]:.2f}" for c in SCORED_CLASSES)


def sharpness(image: np.ndarray) -> float:
    """Mean absolute difference of horizontally and vertically adjacent pixels of a (C, H, W) image."""
    x = image.astype(np.float64)
    return float((np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2)


def raa_sharpness(images: list[np.ndarray], seed: int = 0) -> float:
    """Mean sharpness of OEM images after RAA with the reference ranges, always applied (p = 1)."""
    raa, rng, values = ResolutionAlignment(RAASettings(p=1.0)), np.random.default_rng(seed), []
    for image in images:
        for _ in range(4):
            out, _ = raa(image.transpose(1, 2, 0), image[0], rng)
            values.append(sharpness(out.transpose(2, 0, 1)))
    return float(np.mean(values))


def report(root: Path, control: Path) -> None:
    """Print every figure of the check."""
    sar = root / OEM_SAR_DIR
    truth_paths = sorted((sar / "train" / "labels_truth").glob("*.tif"))
    truth = [read_label(p) for p in truth_paths]
    noisy = [read_label(sar / "train" / "labels" / p.name) for p in truth_paths]
    all_truth = np.concatenate([t.ravel() for t in truth])
    shares = np.bincount(all_truth, minlength=NUM_CLASSES) / all_truth.size
    shares_text = ", ".join(f"{n} {s:.1%}" for n, s in zip(CLASS_NAMES, shares, strict=True))
    print("class shares (OEM-SAR train truth):", shares_text)
    noisy_matrix = confusion(all_truth, np.concatenate([n.ravel() for n in noisy]))
    print(
        f"noisy train labels: pixel agreement {np.trace(noisy_matrix) / noisy_matrix.sum():.1%}, "
        f"mIoU vs truth {miou(noisy_matrix):.3f}"
    )
    print("  per class:", per_class_line(noisy_matrix))
    seen_paths = sorted((sar / "train" / "labels_optical_date").glob("*.tif"))
    seen_truth = np.concatenate([read_label(sar / "train" / "labels_truth" / p.name).ravel() for p in seen_paths])
    seen_matrix = confusion(seen_truth, np.concatenate([read_label(p).ravel() for p in seen_paths]))
    seen_miou = miou(seen_matrix)
    print(f"what the optical partners show (a perfect optical labeller's labels): mIoU vs truth {seen_miou:.3f}")
    print("  per class:", per_class_line(seen_matrix))

    train_sar = load_pairs(sar / "train", "sar_images", "labels_truth", bands=1)
    val_sar = load_pairs(sar / "val", "sar_images", "labels", bands=1)
    zeros = np.mean([(image == 0).mean() for image, _ in train_sar])
    print(f"SAR exact zeros inside valid areas (train): {zeros:.1%}")
    for with_std in (False, True):
        matrix = score(train_sar, val_sar, lambda s, w=with_std: sar_features(s[0], w))
        name = "5x5 mean+std" if with_std else "5x5 mean"
        print(
            f"SAR nearest class mean ({name}), val: mIoU {miou(matrix):.3f}, "
            f"pixel acc {np.trace(matrix) / matrix.sum():.1%} (chance mIoU ~{1 / 16:.2f})"
        )
        print("  per class:", per_class_line(matrix))

    oem_train = oem_pairs(root, "train")
    for name, folder in (("default gap", root), ("domain_gap=0", control)):
        oem_val = oem_pairs(folder, "val")
        target = load_pairs(folder / OEM_SAR_DIR / "train", "rgb_images", "labels_truth", bands=3)
        fit = oem_train if folder is root else oem_pairs(folder, "train")
        on_oem = score(fit, oem_val, rgb_features)
        on_target = score(fit, target, rgb_features)
        print(
            f"RGB nearest class mean fitted on OEM train ({name}): OEM val mIoU {miou(on_oem):.3f}, "
            f"OEM-SAR train RGB mIoU {miou(on_target):.3f}"
        )
        print("  OEM val per class:    ", per_class_line(on_oem))
        print("  OEM-SAR RGB per class:", per_class_line(on_target))
        oem_sharp = np.mean([sharpness(image) for image, _ in oem_val])
        target_sharp = np.mean([sharpness(image) for image, _ in target])
        print(
            f"  sharpness (mean |neighbour difference|): OEM val {oem_sharp:.2f}, OEM-SAR RGB {target_sharp:.2f} "
            f"(ratio {target_sharp / oem_sharp:.2f})"
        )
    images = [image for image, _ in oem_train]
    print(
        f"sharpness of OEM train after RAA (reference ranges, p 1): {raa_sharpness(images):.2f}, "
        f"without: {np.mean([sharpness(image) for image in images]):.2f}"
    )


def main() -> None:
    """Generate the data and print the check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SyntheticConfig(seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = generate_demo_data(Path(tmp) / "default", config, progress=False)
        print(f"generation of the default config: {time.perf_counter() - start:.1f} s")
        control = generate_demo_data(Path(tmp) / "no_gap", replace(config, domain_gap=0.0), progress=False)
        report(root, control)


if __name__ == "__main__":
    main()
