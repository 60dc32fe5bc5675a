"""The official OpenEarthMap-SAR score: mIoU over classes 1..8 with background pixels counted.

A pixel whose reference is background (0) still counts: predicting class k there is a false positive
of k. Only padding (255) pixels are left out of the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from datamodules.classes import CLASS_NAMES, NUM_CLASSES, PADDING, SCORED_CLASSES


def iou_from_confusion(confmat: Tensor, scored: Sequence[int] = SCORED_CLASSES) -> tuple[Tensor, Tensor]:
    """Per-class IoU and the mean IoU over the scored classes.

    Args:
        confmat: ``[C, C]`` counts, rows = reference, columns = prediction.
        scored: the classes averaged into the mean.

    Returns:
        ``(iou, miou)``: ``iou[k] = TP / (TP + FP + FN)`` for every class (nan where the union is 0),
        float32 ``[C]``; ``miou`` the mean of ``iou`` over the scored classes whose union is non-zero
        (nan if there is none).
    """
    counts = confmat.double()
    tp = counts.diagonal()
    union = counts.sum(0) + counts.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    miou = iou[list(scored)].nanmean()
    return iou.float(), miou.float()


class LandCoverIoU(Metric):
    """Confusion-matrix based IoU of the official score; syncs across DDP ranks.

    ``compute()`` returns ``{"mIoU": ..., "IoU/<class name>": ...}`` for the scored classes, spaces in
    class names replaced by underscores.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    confmat: Tensor

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("confmat", default=torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Count one batch.

        Args:
            preds: class indices ``[N, H, W]`` (integer) or scores ``[N, C, H, W]`` (argmax over C).
            target: reference labels ``[N, H, W]`` in ``0..C-1`` or ``PADDING``.
        """
        if preds.dim() == target.dim() + 1:
            if preds.shape[1] != NUM_CLASSES:
                raise ValueError(f"scores have {preds.shape[1]} channels, expected {NUM_CLASSES}")
            preds = preds.argmax(1)
        elif preds.is_floating_point():
            raise ValueError("class-index predictions must be an integer tensor; pass scores as [N, C, H, W]")
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} do not match")

        keep = target != PADDING
        ref, pred = target[keep].long(), preds[keep].long()
        # An out-of-range value would silently land in another cell of the flattened matrix.
        if ((ref < 0) | (ref >= NUM_CLASSES) | (pred < 0) | (pred >= NUM_CLASSES)).any():
            raise ValueError(f"labels and predictions must lie in 0..{NUM_CLASSES - 1} (or {PADDING} in target)")
        counts = torch.bincount(ref * NUM_CLASSES + pred, minlength=NUM_CLASSES * NUM_CLASSES)
        self.confmat += counts.view(NUM_CLASSES, NUM_CLASSES)

    def compute(self) -> dict[str, Tensor]:
        """Return mIoU over the scored classes and the IoU of each scored class."""
        iou, miou = iou_from_confusion(self.confmat)
        scores = {"mIoU": miou}
        for k in SCORED_CLASSES:
            scores[f"IoU/{CLASS_NAMES[k].replace(' ', '_')}"] = iou[k]
        return scores

    def confusion_matrix(self) -> Tensor:
        """Return a copy of the confusion matrix summed over all ranks (rows = reference)."""
        # Inside an outer sync (e.g. called from compute) the state is already global: do not sync or unsync.
        outer = self._is_synced
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn,
            should_sync=self.sync_on_compute and not outer,
            should_unsync=not outer,
        ):
            return self.confmat.clone()


def format_iou_table(scores: dict[str, torch.Tensor], title: str) -> str:
    """Text table of mIoU and per-class IoU, for the console."""
    lines = [f"{title}: mIoU {float(scores['mIoU']):.4f}"]
    for key, value in scores.items():
        if key != "mIoU":
            lines.append(f"  {key.split('/', 1)[-1]:<18} {float(value):.4f}")
    return "\n".join(lines)
