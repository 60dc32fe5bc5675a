"""Tests of the segmentation losses against hand-computed values and brute-force references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from datamodules.classes import BACKGROUND, NUM_CLASSES, PADDING
from lightning_modules.losses import (
    CombinedLoss,
    CrossEntropy,
    LossConfig,
    LovaszSoftmax,
    SymmetricCrossEntropy,
    build_loss,
)

A = -4.0


def _random_batch(seed: int, n: int = 2, c: int = NUM_CLASSES, h: int = 5, w: int = 6, ignore: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=gen) * 2
    target = torch.randint(0, c, (n, h, w), generator=gen)
    target[torch.rand(n, h, w, generator=gen) < 0.2] = ignore
    return logits, target


def _confident(target: torch.Tensor, c: int, margin: float) -> torch.Tensor:
    """Logits that put ``margin`` more on the class given by ``target`` than on every other class."""
    return F.one_hot(target, c).permute(0, 3, 1, 2).float() * margin


# --- symmetric cross-entropy -------------------------------------------------------------------------------


def test_sce_uniform_logits_hand_value() -> None:
    c = 5
    logits = torch.zeros(1, c, 2, 2)
    target = torch.tensor([[[1, 2], [3, 4]]])
    alpha, beta = 0.7, 1.3
    loss = SymmetricCrossEntropy(alpha=alpha, beta=beta, A=A, ignore_index=0)(logits, target)
    ce, rce = math.log(c), -A * (1 - 1 / c)
    assert loss.item() == pytest.approx(alpha * ce + beta * rce, rel=1e-6)


def test_sce_confident_correct_is_near_zero() -> None:
    target = torch.tensor([[[1, 2], [3, 8]]])
    loss = SymmetricCrossEntropy()(_confident(target, NUM_CLASSES, 40.0), target)
    assert 0 <= loss.item() < 1e-6


def test_sce_confidently_wrong_pixel() -> None:
    # One pixel, label 1, logit margin m on class 2: p_y = 1 / (1 + e^m + (C - 2)).
    c, m = 4, 6.0
    logits = torch.zeros(1, c, 1, 1)
    logits[0, 2] = m
    target = torch.tensor([[[1]]])
    p_y = 1 / (math.exp(m) + (c - 1))
    expected = 1.0 * -math.log(p_y) + 2.0 * -A * (1 - p_y)
    loss = SymmetricCrossEntropy(alpha=1.0, beta=2.0, A=A)(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # The reverse term saturates at -A: bounded, unlike CE.
    assert 2.0 * -A * (1 - p_y) == pytest.approx(8.0, abs=0.02)


@pytest.mark.parametrize("ignore", [BACKGROUND, PADDING])
def test_sce_ignored_pixel_changes_neither_value_nor_gradient(ignore: int) -> None:
    logits, target = _random_batch(0, ignore=ignore)
    target[0, 0, 0] = ignore
    loss_fn = SymmetricCrossEntropy(ignore_index=ignore)

    def value_and_grad(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        x = x.clone().requires_grad_(True)
        out = loss_fn(x, target)
        out.backward()
        return out.item(), x.grad

    v1, g1 = value_and_grad(logits)
    changed = logits.clone()
    changed[0, :, 0, 0] = torch.tensor([50.0, -30.0, 7.0, 0.0, 1e4, -1e4, 3.0, 2.0, 1.0])
    v2, g2 = value_and_grad(changed)
    assert v1 == pytest.approx(v2, rel=1e-6)
    assert torch.equal(g1[0, :, 0, 0], torch.zeros(NUM_CLASSES))
    assert torch.allclose(g1, g2, atol=1e-7)
    # Removing the ignored pixel from the mean's denominator: the mean runs over valid pixels only.
    valid = target != ignore
    nll = F.cross_entropy(logits, torch.where(valid, target, 0), reduction="none")
    p_y = torch.exp(-nll)
    manual = ((nll + 2.0 * -A * (1 - p_y))[valid]).mean()
    assert v1 == pytest.approx(manual.item(), rel=1e-5)


@pytest.mark.parametrize("ignore", [BACKGROUND, PADDING])
def test_sce_alpha1_beta0_is_torch_cross_entropy(ignore: int) -> None:
    logits, target = _random_batch(1, ignore=ignore)
    ours = SymmetricCrossEntropy(alpha=1.0, beta=0.0, ignore_index=ignore)(logits, target)
    ref = F.cross_entropy(logits, target, ignore_index=ignore)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)


def test_sce_reverse_term_is_minus_A_one_minus_p_y() -> None:
    logits, target = _random_batch(2)
    a_value = -6.0
    rce = SymmetricCrossEntropy(alpha=0.0, beta=1.0, A=a_value)(logits, target)
    # Direct definition: -sum_k p_k log q_k with q one-hot and log 0 := A.
    p = logits.softmax(1)
    log_q = torch.full_like(p, a_value)
    log_q.scatter_(1, target.unsqueeze(1), 0.0)
    per_pixel = -(p * log_q).sum(1)
    valid = target != 0
    assert rce.item() == pytest.approx(per_pixel[valid].mean().item(), rel=1e-5)
    p_y = p.gather(1, target.unsqueeze(1)).squeeze(1)
    assert rce.item() == pytest.approx((-a_value * (1 - p_y))[valid].mean().item(), rel=1e-5)


def test_sce_is_not_three_times_ce() -> None:
    # Confidently wrong: CE is large (~20) while RCE saturates at -A, so SCE ~ CE + 8, far from 3 CE ~ 60.
    target = torch.tensor([[[1, 2], [3, 4]]])
    logits = _confident(torch.tensor([[[5, 6], [7, 8]]]), NUM_CLASSES, 20.0)
    ce = F.cross_entropy(logits, target, ignore_index=0).item()
    sce = SymmetricCrossEntropy(alpha=1.0, beta=2.0, A=A)(logits, target).item()
    assert ce > 19
    assert sce == pytest.approx(ce + 2.0 * -A, rel=1e-6)
    assert sce < 0.5 * 3 * ce
    # And on random logits the reverse term stays bounded by -A: CE < SCE <= CE + 8.
    logits, target = _random_batch(3)
    ce = F.cross_entropy(logits, target, ignore_index=0).item()
    sce = SymmetricCrossEntropy(alpha=1.0, beta=2.0, A=A)(logits, target).item()
    assert ce < sce <= ce + 2.0 * -A + 1e-5


def test_sce_half_input_is_computed_in_float32() -> None:
    logits, target = _random_batch(4)
    loss_fn = SymmetricCrossEntropy()
    half = loss_fn(logits.half(), target)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(loss_fn(logits.half().float(), target).item(), rel=1e-6)


def test_sce_extreme_logits_are_finite() -> None:
    target = torch.tensor([[[1, 2]]])
    logits = torch.zeros(1, NUM_CLASSES, 1, 2)
    logits[0, 1, 0, 0] = 1e4  # extremely confident, correct
    logits[0, 5, 0, 1] = 1e4  # extremely confident, wrong
    x = logits.requires_grad_(True)
    loss = SymmetricCrossEntropy()(x, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_sce_pixel_weight() -> None:
    logits, target = _random_batch(5)
    weight = torch.rand(target.shape, generator=torch.Generator().manual_seed(0))
    loss_fn = SymmetricCrossEntropy(alpha=1.0, beta=2.0)
    valid = target != 0
    nll = F.cross_entropy(logits, torch.where(valid, target, 0), reduction="none")
    per_pixel = nll + 2.0 * -A * (1 - torch.exp(-nll))
    expected = (weight * per_pixel)[valid].sum() / valid.sum()
    assert loss_fn(logits, target, weight).item() == pytest.approx(expected.item(), rel=1e-5)


def test_sce_rejects_non_negative_A() -> None:
    with pytest.raises(ValueError):
        SymmetricCrossEntropy(A=0.0)


# --- cross-entropy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore", [BACKGROUND, PADDING])
def test_ce_pixel_weight_against_manual(ignore: int) -> None:
    logits, target = _random_batch(6, ignore=ignore)
    weight = torch.rand(target.shape, generator=torch.Generator().manual_seed(1))
    weight[target == ignore] = 1e6  # a weight at an ignored pixel must not matter
    loss = CrossEntropy(ignore_index=ignore)(logits, target, weight)
    total, count = 0.0, 0
    log_p = logits.log_softmax(1)
    for i, y, x in itertools.product(range(target.shape[0]), range(target.shape[1]), range(target.shape[2])):
        label = int(target[i, y, x])
        if label == ignore:
            continue
        total += float(weight[i, y, x]) * -float(log_p[i, label, y, x])
        count += 1
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_ce_without_weight_is_torch_cross_entropy() -> None:
    logits, target = _random_batch(7, ignore=PADDING)
    ours = CrossEntropy(ignore_index=PADDING)(logits, target)
    ref = F.cross_entropy(logits, target, ignore_index=PADDING)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)


def test_ce_rejects_mismatched_weight() -> None:
    logits, target = _random_batch(8)
    with pytest.raises(ValueError):
        CrossEntropy()(logits, target, torch.ones(1, 2, 3))


# --- Lovasz-softmax -----------------------------------------------------------------------------------------


def _jaccard_loss_of_set(mispredicted: set[int], foreground: set[int]) -> float:
    """Berman et al.'s set function: |M| / |F u M| (0 for the empty set)."""
    union = foreground | mispredicted
    return len(mispredicted) / len(union) if union else 0.0


def _lovasz_reference(probs: torch.Tensor, labels: torch.Tensor, classes: str) -> float:
    """Brute force over flat ``probs [P, C]``/``labels [P]``: the Lovasz extension by its definition.

    For errors e sorted decreasingly along a permutation pi, the extension is
    sum_i e_pi(i) * (J({pi_1..pi_i}) - J({pi_1..pi_{i-1}})), with J evaluated on explicit sets.
    """
    per_class = []
    for c in range(probs.shape[1]):
        foreground = {i for i in range(len(labels)) if int(labels[i]) == c}
        if classes == "present" and not foreground:
            continue
        errors = [abs((1.0 if i in foreground else 0.0) - float(probs[i, c])) for i in range(len(labels))]
        order = sorted(range(len(errors)), key=lambda i: -errors[i])
        value, prefix = 0.0, set()
        for i in order:
            before = _jaccard_loss_of_set(prefix, foreground)
            prefix.add(i)
            value += errors[i] * (_jaccard_loss_of_set(prefix, foreground) - before)
        per_class.append(value)
    return sum(per_class) / len(per_class)


def _lovasz_by_threshold_integral(probs: torch.Tensor, labels: torch.Tensor, c: int) -> float:
    """A second definition of the extension for errors in [0, 1]: integral over t of J({i : e_i >= t})."""
    foreground = {i for i in range(len(labels)) if int(labels[i]) == c}
    errors = [abs((1.0 if i in foreground else 0.0) - float(probs[i, c])) for i in range(len(labels))]
    levels = sorted(set(errors) | {0.0})
    value = 0.0
    for low, high in itertools.pairwise(levels):
        above = {i for i, e in enumerate(errors) if e >= high}
        value += (high - low) * _jaccard_loss_of_set(above, foreground)
    return value


@pytest.mark.parametrize("classes", ["present", "all"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lovasz_matches_brute_force(classes: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    c = 4
    logits = torch.randn(2, c, 3, 4, generator=gen) * 2
    target = torch.randint(0, c, (2, 3, 4), generator=gen)
    target[0, 0, :2] = PADDING
    target[target == 3] = 1  # class 3 absent: "present" and "all" differ
    ours = LovaszSoftmax(ignore_index=PADDING, classes=classes)(logits, target)
    flat_p = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, c)
    flat_y = target.reshape(-1)
    keep = flat_y != PADDING
    ref = _lovasz_reference(flat_p[keep], flat_y[keep], classes)
    assert ours.item() == pytest.approx(ref, rel=1e-5, abs=1e-6)


def test_brute_force_lovasz_agrees_with_threshold_integral() -> None:
    # Cross-check the test's own reference with an independent formula of the same extension.
    gen = torch.Generator().manual_seed(3)
    probs = torch.randn(10, 3, generator=gen).softmax(1)
    labels = torch.randint(0, 3, (10,), generator=gen)
    labels[0] = 0
    direct = _lovasz_reference(probs, labels, "all")
    integral = sum(_lovasz_by_threshold_integral(probs, labels, c) for c in range(3)) / 3
    assert direct == pytest.approx(integral, rel=1e-9)


def test_lovasz_perfect_is_near_zero_and_wrong_is_positive() -> None:
    target = torch.tensor([[[1, 2, 3], [4, 5, 8]]])
    loss_fn = LovaszSoftmax()
    assert loss_fn(_confident(target, NUM_CLASSES, 40.0), target).item() < 1e-6
    wrong = _confident(torch.roll(target, 1, dims=2), NUM_CLASSES, 40.0)
    assert loss_fn(wrong, target).item() > 0.5


@pytest.mark.parametrize("ignore", [BACKGROUND, PADDING])
def test_lovasz_ignored_pixels_change_nothing(ignore: int) -> None:
    logits, target = _random_batch(9, ignore=ignore)
    target[1, 2, :] = ignore
    loss_fn = LovaszSoftmax(ignore_index=ignore)
    changed = logits.clone()
    changed[1, :, 2, :] = torch.randn(NUM_CLASSES, logits.shape[3]) * 100
    x1, x2 = logits.requires_grad_(True), changed.requires_grad_(True)
    v1, v2 = loss_fn(x1, target), loss_fn(x2, target)
    v1.backward()
    v2.backward()
    assert v1.item() == pytest.approx(v2.item(), rel=1e-6)
    ignored = (target == ignore).unsqueeze(1).expand_as(logits)
    assert torch.count_nonzero(x1.grad[ignored]) == 0
    assert torch.count_nonzero(x1.grad[~ignored]) > 0
    assert torch.allclose(x1.grad, x2.grad, atol=1e-7)


def test_lovasz_rejects_pixel_weight_and_bad_classes() -> None:
    logits, target = _random_batch(10)
    with pytest.raises(ValueError):
        LovaszSoftmax()(logits, target, torch.ones_like(target, dtype=torch.float32))
    with pytest.raises(ValueError):
        LovaszSoftmax(classes="some")  # type: ignore[arg-type]


# --- shared contract: all ignored -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss_fn",
    [CrossEntropy(), SymmetricCrossEntropy(), LovaszSoftmax(), LovaszSoftmax(classes="all")],
    ids=["ce", "sce", "lovasz-present", "lovasz-all"],
)
def test_all_ignored_batch_is_zero_and_differentiable(loss_fn: torch.nn.Module) -> None:
    logits = torch.randn(2, NUM_CLASSES, 3, 3, requires_grad=True)
    target = torch.full((2, 3, 3), BACKGROUND)
    loss = loss_fn(logits, target)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad is not None and torch.equal(logits.grad, torch.zeros_like(logits))


# --- combination --------------------------------------------------------------------------------------------


def test_combined_loss_sums_with_weights_and_reports_terms() -> None:
    logits, target = _random_batch(11)
    ce, sce, lov = CrossEntropy(), SymmetricCrossEntropy(), LovaszSoftmax()
    combined = CombinedLoss({"ce": (ce, 0.5), "sce": (sce, 1.5), "lovasz": (lov, 0.0)})
    total, terms = combined(logits.requires_grad_(True), target)
    expected = 0.5 * ce(logits, target) + 1.5 * sce(logits, target)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == {"ce", "sce"}  # weight 0: skipped
    assert terms["sce"].item() == pytest.approx(sce(logits, target).item(), rel=1e-6)
    assert not terms["ce"].requires_grad and total.requires_grad


def test_combined_loss_forwards_pixel_weight() -> None:
    logits, target = _random_batch(12)
    weight = torch.rand(target.shape, generator=torch.Generator().manual_seed(2))
    total, _ = CombinedLoss({"ce": (CrossEntropy(), 2.0)})(logits, target, weight)
    assert total.item() == pytest.approx(2.0 * CrossEntropy()(logits, target, weight).item(), rel=1e-6)


def test_combined_loss_rejects_negative_or_all_zero_weights() -> None:
    with pytest.raises(ValueError):
        CombinedLoss({"ce": (CrossEntropy(), -1.0)})
    with pytest.raises(ValueError):
        CombinedLoss({"ce": (CrossEntropy(), 0.0)})


def test_build_loss_terms_and_value() -> None:
    logits, target = _random_batch(13)
    loss = build_loss(LossConfig(ce_weight=0.0, sce_weight=1.0, lovasz_weight=1.0, ignore_index=0))
    total, terms = loss(logits, target)
    expected = SymmetricCrossEntropy(1.0, 2.0, -4.0, 0)(logits, target) + LovaszSoftmax(0)(logits, target)
    assert set(terms) == {"sce", "lovasz"}
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_build_loss_all_zero_raises() -> None:
    with pytest.raises(ValueError):
        build_loss(LossConfig(ce_weight=0.0, sce_weight=0.0, lovasz_weight=0.0))


def test_the_sce_defaults_live_in_the_loss_config() -> None:
    sce, config = SymmetricCrossEntropy(), LossConfig()
    assert (sce.alpha, sce.beta, sce.A) == (config.sce_alpha, config.sce_beta, config.sce_A) == (1.0, 2.0, -4.0)
