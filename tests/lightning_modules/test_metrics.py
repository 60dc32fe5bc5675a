"""Tests of the official OpenEarthMap-SAR score against a direct numpy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datamodules.classes import BACKGROUND, CLASS_NAMES, NUM_CLASSES, PADDING, SCORED_CLASSES
from lightning_modules.metrics import LandCoverIoU, iou_from_confusion

KEYS = ["mIoU"] + [f"IoU/{CLASS_NAMES[k].replace(' ', '_')}" for k in SCORED_CLASSES]


def _official_numpy(pred: np.ndarray, ref: np.ndarray) -> tuple[float, dict[int, float]]:
    """The official formula pixel-set-wise: IoU_k = |P_k & R_k| / |P_k | R_k|, padding pixels dropped."""
    keep = ref != PADDING
    pred, ref = pred[keep], ref[keep]
    ious = {}
    for k in SCORED_CLASSES:
        union = np.logical_or(pred == k, ref == k).sum()
        if union:
            ious[k] = np.logical_and(pred == k, ref == k).sum() / union
    return float(np.mean(list(ious.values()))) if ious else math.nan, ious


def _random(seed: int, shape: tuple[int, ...] = (3, 17, 19)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, NUM_CLASSES, shape, generator=gen)
    ref = torch.randint(0, NUM_CLASSES, shape, generator=gen)
    # Make prediction and reference correlated, and add background and padding to the reference.
    agree = torch.rand(shape, generator=gen) < 0.5
    pred = torch.where(agree, ref, pred)
    ref[torch.rand(shape, generator=gen) < 0.15] = BACKGROUND
    ref[torch.rand(shape, generator=gen) < 0.1] = PADDING
    return pred, ref.to(torch.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_official_formula(seed: int) -> None:
    pred, ref = _random(seed)
    assert (ref == BACKGROUND).any() and (ref == PADDING).any() and (pred == BACKGROUND).any()
    metric = LandCoverIoU()
    metric.update(pred, ref)
    scores = metric.compute()
    miou, ious = _official_numpy(pred.numpy(), ref.numpy())
    assert list(scores) == KEYS
    assert scores["mIoU"].item() == pytest.approx(miou, rel=1e-6)
    for k, value in ious.items():
        assert scores[KEYS[k]].item() == pytest.approx(value, rel=1e-6)


def test_background_reference_counts_as_false_positive() -> None:
    ref = torch.tensor([[[1, 1, 0, 0]]])
    perfect = torch.tensor([[[1, 1, 0, 0]]])
    fp_on_background = torch.tensor([[[1, 1, 1, 0]]])

    def iou_1(pred: torch.Tensor) -> float:
        metric = LandCoverIoU()
        metric.update(pred, ref)
        return metric.compute()["IoU/Bareland"].item()

    assert iou_1(perfect) == 1.0
    assert iou_1(fp_on_background) == pytest.approx(2 / 3)


def test_predicting_background_is_never_rewarded() -> None:
    pred, ref = _random(3)
    base = LandCoverIoU()
    base.update(pred, ref)
    base_scores = base.compute()
    # Replacing any prediction by 0 can only remove true positives / false positives of scored
    # classes while adding false negatives; it must never raise a scored IoU on a pixel that was right.
    correct_scored = (pred == ref.long()) & (ref != BACKGROUND) & (ref != PADDING)
    worse = torch.where(correct_scored, torch.zeros_like(pred), pred)
    metric = LandCoverIoU()
    metric.update(worse, ref)
    scores = metric.compute()
    assert scores["mIoU"] < base_scores["mIoU"]
    # All-background predictions score 0 on every scored class present in the reference.
    all_zero = LandCoverIoU()
    all_zero.update(torch.zeros_like(pred), ref)
    assert all_zero.compute()["mIoU"].item() == 0.0
    # Correctly predicted background adds nothing to any score: no reward for predicting 0.
    extra = LandCoverIoU()
    extra.update(torch.cat([worse, torch.zeros_like(worse)]), torch.cat([ref, torch.zeros_like(ref)]))
    assert all(torch.equal(extra.compute()[k], scores[k]) for k in KEYS if not scores[k].isnan())
    # No IoU entry for background; its confusion row/column is still counted.
    assert "IoU/Background" not in scores
    assert metric.confusion_matrix()[:, BACKGROUND].sum() > 0


def test_padding_pixels_are_ignored() -> None:
    pred, ref = _random(4)
    metric = LandCoverIoU()
    metric.update(pred, ref)
    scrambled = pred.clone()
    padded = ref == PADDING
    scrambled[padded] = (scrambled[padded] + 3) % NUM_CLASSES
    other = LandCoverIoU()
    other.update(scrambled, ref)
    assert torch.equal(metric.confusion_matrix(), other.confusion_matrix())
    assert metric.confusion_matrix().sum() == (~padded).sum()


def test_logits_equal_indices() -> None:
    pred, ref = _random(5)
    logits = (
        F.one_hot(pred, NUM_CLASSES).permute(0, 3, 1, 2).float() * 3
        + torch.randn(pred.shape[0], NUM_CLASSES, *pred.shape[1:]) * 0.1
    )
    from_idx, from_logits, from_probs = LandCoverIoU(), LandCoverIoU(), LandCoverIoU()
    from_idx.update(pred, ref)
    from_logits.update(logits, ref)
    from_probs.update(logits.softmax(1), ref)
    assert torch.equal(from_idx.confusion_matrix(), from_logits.confusion_matrix())
    assert torch.equal(from_idx.confusion_matrix(), from_probs.confusion_matrix())


def test_absent_class_is_excluded_from_mean() -> None:
    ref = torch.tensor([[[1, 1, 2, 2, 0, PADDING]]])
    pred = torch.tensor([[[1, 1, 2, 1, 0, 5]]])  # class 5 only predicted on padding: union 0
    metric = LandCoverIoU()
    metric.update(pred, ref)
    scores = metric.compute()
    assert scores["IoU/Bareland"].item() == pytest.approx(2 / 3)
    assert scores["IoU/Rangeland"].item() == pytest.approx(1 / 2)
    for k in SCORED_CLASSES[2:]:
        assert math.isnan(scores[KEYS[k]].item())
    assert scores["mIoU"].item() == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_miou_nan_only_when_no_scored_class_occurs() -> None:
    metric = LandCoverIoU()
    metric.update(torch.tensor([[[0, 0, 3]]]), torch.tensor([[[0, 0, PADDING]]]))
    assert math.isnan(metric.compute()["mIoU"].item())
    iou, miou = iou_from_confusion(torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long))
    assert torch.isnan(iou).all() and math.isnan(miou.item())


def test_iou_from_confusion_by_hand() -> None:
    confmat = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    confmat[1, 1], confmat[1, 2], confmat[2, 1], confmat[0, 2], confmat[0, 0] = 6, 2, 1, 3, 10
    iou, miou = iou_from_confusion(confmat)
    assert iou[1].item() == pytest.approx(6 / 9)  # TP 6, FN 2, FP 1
    assert iou[2].item() == 0.0  # TP 0, FN 1, FP 2 + 3 (the background pixels)
    assert iou[0].item() == pytest.approx(10 / 13)  # computed, but never averaged
    assert miou.item() == pytest.approx((6 / 9 + 0.0) / 2)


def test_reset() -> None:
    pred, ref = _random(6)
    metric = LandCoverIoU()
    metric.update(pred, ref)
    metric.compute()
    metric.reset()
    assert metric.confusion_matrix().sum() == 0
    other_pred, other_ref = _random(7)
    metric.update(other_pred, other_ref)
    fresh = LandCoverIoU()
    fresh.update(other_pred, other_ref)
    assert metric.compute()["mIoU"].item() == pytest.approx(fresh.compute()["mIoU"].item())


def test_two_updates_equal_one_concatenated_update() -> None:
    (p1, r1), (p2, r2) = _random(8), _random(9)
    split, joint = LandCoverIoU(), LandCoverIoU()
    split.update(p1, r1)
    split.update(p2, r2)
    joint.update(torch.cat([p1, p2]), torch.cat([r1, r2]))
    assert torch.equal(split.confusion_matrix(), joint.confusion_matrix())
    for key in KEYS:
        a, b = split.compute()[key].item(), joint.compute()[key].item()
        assert a == b or (math.isnan(a) and math.isnan(b))


def test_confusion_matrix_rows_are_reference() -> None:
    metric = LandCoverIoU()
    metric.update(torch.tensor([[[2]]]), torch.tensor([[[1]]]))
    confmat = metric.confusion_matrix()
    assert confmat[1, 2] == 1 and confmat.sum() == 1


def test_confusion_matrix_is_synced_and_local_state_restored() -> None:
    # Pretend there are two ranks that hold the same state: the synced matrix is twice the local one.
    def two_ranks(tensor: torch.Tensor, group: object = None) -> list[torch.Tensor]:
        return [tensor.clone(), tensor.clone()]

    metric = LandCoverIoU(dist_sync_fn=two_ranks, distributed_available_fn=lambda: True)
    pred, ref = _random(10)
    metric.update(pred, ref)
    local = metric.confmat.clone()
    assert torch.equal(metric.confusion_matrix(), 2 * local)
    assert torch.equal(metric.confmat, local)
    metric.compute()
    assert torch.equal(metric.confmat, local)


def test_rejects_out_of_range_values() -> None:
    metric = LandCoverIoU()
    with pytest.raises(ValueError):
        metric.update(torch.tensor([[[1]]]), torch.tensor([[[9]]]))
    with pytest.raises(ValueError):
        metric.update(torch.tensor([[[9]]]), torch.tensor([[[1]]]))
    with pytest.raises(ValueError):
        metric.update(torch.tensor([[[1.0]]]), torch.tensor([[[1]]]))
