"""Stage-1 mean-teacher building blocks: EMA, pseudo-label weights, ClassMix, strong augmentation."""

import pytest
import torch
from torch import nn

from lightning_modules.mean_teacher import (
    blur_kernel_size,
    classmix,
    classmix_masks,
    ema_momentum,
    ema_update,
    image_confidence_weights,
    make_teacher,
    num_mixed_classes,
    pixel_threshold_weights,
    strong_augment,
)

# ----------------------------------------------------------------------------- EMA


def _toy(weight: float, bias: float) -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(weight)
        model[0].bias.fill_(bias)
    return model


def test_ema_momentum_warm_up_and_cap() -> None:
    assert ema_momentum(0, 0.999) == 0.0
    assert ema_momentum(1, 0.999) == 0.5
    assert ema_momentum(9, 0.999) == pytest.approx(0.9)
    assert ema_momentum(10**6, 0.999) == 0.999
    assert ema_momentum(3, 0.5) == 0.5


def test_ema_update_matches_hand_computation() -> None:
    teacher, student = _toy(4.0, -2.0), _toy(8.0, 2.0)
    ema_update(teacher, student, 0.25)  # 0.25 * t + 0.75 * s
    assert torch.equal(teacher[0].weight, torch.full((1, 2), 7.0))
    assert torch.equal(teacher[0].bias, torch.full((1,), 1.0))
    assert torch.equal(student[0].weight, torch.full((1, 2), 8.0))  # student untouched


def test_ema_update_follows_the_momentum_schedule() -> None:
    teacher, student = _toy(100.0, 0.0), _toy(2.0, 0.0)
    ema_update(teacher, student, ema_momentum(0, 0.999))  # step 0: the teacher becomes the student
    assert torch.equal(teacher[0].weight, student[0].weight)
    with torch.no_grad():
        student[0].weight.fill_(6.0)
    ema_update(teacher, student, ema_momentum(1, 0.999))  # step 1: halfway
    assert torch.equal(teacher[0].weight, torch.full((1, 2), 4.0))
    with torch.no_grad():
        student[0].weight.fill_(1004.0)
    ema_update(teacher, student, ema_momentum(10**6, 0.999))  # late: alpha_max
    torch.testing.assert_close(teacher[0].weight, torch.full((1, 2), 0.999 * 4.0 + 0.001 * 1004.0))


def _set_bn_stats(model: nn.Module, mean: float, count: int) -> None:
    model[1].running_mean.fill_(mean)
    model[1].num_batches_tracked.fill_(count)


@pytest.mark.parametrize(
    ("mode", "expected_mean", "expected_count"),
    [("keep", 1.0, 3), ("copy", 5.0, 7), ("ema", 0.25 * 1.0 + 0.75 * 5.0, 7)],
)
def test_ema_update_buffers(mode: str, expected_mean: float, expected_count: int) -> None:
    teacher, student = _toy(0.0, 0.0), _toy(1.0, 1.0)
    _set_bn_stats(teacher, 1.0, 3)
    _set_bn_stats(student, 5.0, 7)
    ema_update(teacher, student, 0.25, buffers=mode)  # type: ignore[arg-type]
    assert torch.equal(teacher[1].running_mean, torch.full((1,), expected_mean))
    assert int(teacher[1].num_batches_tracked) == expected_count
    assert torch.equal(teacher[0].weight, torch.full((1, 2), 0.75))  # parameters follow the EMA in every mode


def test_ema_update_default_keeps_buffers() -> None:
    teacher, student = _toy(0.0, 0.0), _toy(1.0, 1.0)
    _set_bn_stats(teacher, 1.0, 3)
    _set_bn_stats(student, 5.0, 7)
    ema_update(teacher, student, 0.5)
    assert float(teacher[1].running_mean) == 1.0


def test_ema_update_rejects_mismatched_modules() -> None:
    with pytest.raises(ValueError, match="parameters differ"):
        ema_update(nn.Linear(2, 1), nn.Linear(3, 1), 0.5)
    with pytest.raises(ValueError, match="parameters differ"):
        ema_update(nn.Sequential(nn.Linear(2, 1)), nn.Sequential(nn.Identity(), nn.Linear(2, 1)), 0.5)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(nn.Linear(2, 1), nn.Linear(2, 1), 1.5)


def test_make_teacher_is_frozen_independent_and_gets_no_gradient() -> None:
    student = _toy(1.0, 0.5)
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.requires_grad for p in student.parameters())
    for (name_t, t), (name_s, s) in zip(teacher.named_parameters(), student.named_parameters(), strict=True):
        assert name_t == name_s and torch.equal(t, s) and t.data_ptr() != s.data_ptr()
    x = torch.randn(4, 2)
    (student(x) + teacher(x)).sum().backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())


# ----------------------------------------------------------------------------- pseudo-label weights


def _probs_from_confidence(conf: torch.Tensor) -> torch.Tensor:
    """Two-class probabilities (N, 2, H, W) whose max is ``conf`` (conf >= 0.5)."""
    return torch.stack([conf, 1 - conf], dim=1)


def test_image_confidence_weights_counts_confident_pixels() -> None:
    conf = torch.tensor([[[0.99, 0.97], [0.50, 0.75]], [[0.6, 0.6], [0.6, 0.6]]])
    weights = image_confidence_weights(_probs_from_confidence(conf), tau=0.75)
    torch.testing.assert_close(weights, torch.tensor([0.75, 0.0]))  # 0.75 itself counts (>=)
    strict = image_confidence_weights(_probs_from_confidence(conf), tau=0.968)
    torch.testing.assert_close(strict, torch.tensor([0.5, 0.0]))


def test_image_confidence_weights_with_ignore_mask() -> None:
    conf = torch.tensor([[[0.99, 0.97], [0.50, 0.75]], [[0.99, 0.6], [0.6, 0.6]]])
    ignore = torch.tensor([[[True, False], [False, False]], [[True, True], [True, True]]])
    weights = image_confidence_weights(_probs_from_confidence(conf), tau=0.75, ignore_mask=ignore)
    torch.testing.assert_close(weights, torch.tensor([2 / 3, 0.0]))  # fully ignored image -> 0


def test_pixel_threshold_weights() -> None:
    conf = torch.tensor([[[0.99, 0.97], [0.50, 0.75]]])
    weights = pixel_threshold_weights(_probs_from_confidence(conf), tau=0.97)
    assert torch.equal(weights, torch.tensor([[[1.0, 1.0], [0.0, 0.0]]]))


# ----------------------------------------------------------------------------- ClassMix


def _labels_with_classes(class_sets: list[list[int]], size: int = 12) -> torch.Tensor:
    """One (size, size) label per class set: vertical stripes, one stripe per listed value."""
    labels = torch.empty(len(class_sets), size, size, dtype=torch.long)
    for i, classes in enumerate(class_sets):
        stripe = torch.arange(size) * len(classes) // size
        labels[i] = torch.tensor(classes)[stripe].view(1, size).expand(size, size)
    return labels


def test_num_mixed_classes_rounds_half_up() -> None:
    assert [num_mixed_classes(n) for n in range(6)] == [0, 1, 1, 2, 2, 3]


def test_classmix_masks_take_half_the_classes_never_ignored_ones() -> None:
    class_sets = [[1], [1, 2], [0, 3, 255], [1, 2, 3, 4], [2, 4, 5, 6, 8, 255], [255]]
    labels = _labels_with_classes(class_sets)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        masks = classmix_masks(labels, generator)
        assert masks.dtype == torch.bool and masks.shape == labels.shape
        for label, mask, classes in zip(labels, masks, class_sets, strict=True):
            chosen = set(label[mask].tolist())
            real = [c for c in classes if c != 255]
            assert len(chosen) == num_mixed_classes(len(real))
            assert 255 not in chosen
            assert torch.equal(mask, torch.isin(label, torch.tensor(sorted(chosen), dtype=torch.long)))


def test_classmix_masks_custom_ignore_values() -> None:
    labels = _labels_with_classes([[0, 1, 2, 255]])
    for seed in range(10):
        masks = classmix_masks(labels, torch.Generator().manual_seed(seed), ignore_values=(0, 255))
        chosen = set(labels[masks].tolist())
        assert len(chosen) == 1 and chosen <= {1, 2}


def test_classmix_masks_reproducible_and_random() -> None:
    labels = _labels_with_classes([[1, 2, 3, 4, 5, 6]] * 8)
    first = classmix_masks(labels, torch.Generator().manual_seed(3))
    again = classmix_masks(labels, torch.Generator().manual_seed(3))
    other = classmix_masks(labels, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert len({tuple(m[0].tolist()) for m in first}) > 1  # images draw their own classes


def test_classmix_masks_batch_variant_draws_from_the_batch_classes() -> None:
    labels = _labels_with_classes([[1, 2], [3, 4]])
    empty = per_image_empty = 0
    for seed in range(40):
        batch_masks = classmix_masks(labels, torch.Generator().manual_seed(seed), per_image=False)
        image_masks = classmix_masks(labels, torch.Generator().manual_seed(seed), per_image=True)
        empty += int(not batch_masks[0].any())
        per_image_empty += int(not image_masks[0].any())
        for label, mask in zip(labels, batch_masks, strict=True):  # still whole classes, never half a class
            chosen = torch.tensor(sorted(set(label[mask].tolist())), dtype=torch.long)
            assert torch.equal(mask, torch.isin(label, chosen))
    # 2 of the batch's 4 classes: image 0 gets neither of its classes with probability 1/6
    assert empty > 0 and per_image_empty == 0


def test_classmix_mixes_inside_and_outside_the_mask() -> None:
    g = torch.Generator().manual_seed(0)
    n, h, w = 3, 8, 8
    xs, xt = torch.rand(n, 3, h, w, generator=g), torch.rand(n, 3, h, w, generator=g) + 10
    ys = torch.randint(0, 9, (n, h, w), generator=g, dtype=torch.uint8)
    yt = torch.randint(0, 9, (n, h, w), generator=g)
    masks = torch.rand(n, h, w, generator=g) < 0.5
    w_img = torch.tensor([0.2, 0.5, 0.9])
    images, labels, weights = classmix(xs, xt, ys, yt, masks, w_img)
    m3 = masks[:, None].expand_as(xs)
    assert torch.equal(images[m3], xs[m3]) and torch.equal(images[~m3], xt[~m3])
    assert torch.equal(labels[masks], ys[masks].long()) and torch.equal(labels[~masks], yt[~masks])
    assert torch.all(weights[masks] == 1.0)
    expected_outside = w_img.view(n, 1, 1).expand(n, h, w)[~masks]
    assert torch.equal(weights[~masks], expected_outside)


def test_classmix_with_pixel_weights() -> None:
    masks = torch.tensor([[[True, False], [False, True]]])
    pixel_w = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    x = torch.zeros(1, 3, 2, 2)
    y = torch.zeros(1, 2, 2, dtype=torch.long)
    _, _, weights = classmix(x, x, y, y, masks, pixel_w)
    assert torch.equal(weights, torch.tensor([[[1.0, 0.0], [1.0, 1.0]]]))
    with pytest.raises(ValueError, match="target_weights"):
        classmix(x, x, y, y, masks, torch.ones(2))


# ----------------------------------------------------------------------------- strong augmentation


def _texture(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random RGB texture in 1..255 with an exact-black padding block bottom-right."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(1, 256, (n, 3, size, size), generator=g).float()
    images[:, :, size // 2 :, size // 2 :] = 0.0
    return images


def test_blur_kernel_size_is_odd_tenth_of_side() -> None:
    assert [blur_kernel_size(s) for s in (512, 100, 64, 8, 1)] == [51, 9, 7, 1, 1]


def test_strong_augment_p0_is_identity() -> None:
    images = _texture()
    out = strong_augment(images, torch.Generator().manual_seed(0), jitter_p=0.0, blur_p=0.0)
    assert torch.equal(out, images)


@pytest.mark.parametrize(("jitter_p", "blur_p"), [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_strong_augment_changes_pixels_keeps_black_and_range(jitter_p: float, blur_p: float) -> None:
    images = _texture()
    black = (images == 0).all(dim=1)
    generator = torch.Generator().manual_seed(1)
    out = strong_augment(images, generator, jitter_p=jitter_p, blur_p=blur_p, blur_sigma=(0.8, 1.15))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert torch.all(out.permute(0, 2, 3, 1)[black] == 0)
    assert out.min() >= 0 and out.max() <= 255
    changed = (out - images).abs().amax(dim=1)[~black]
    assert (changed > 1e-3).float().mean() > 0.9
    assert not torch.equal(out, images)


def test_strong_augment_parameters_differ_per_image() -> None:
    images = _texture(n=1).expand(4, -1, -1, -1).contiguous()
    out = strong_augment(images, torch.Generator().manual_seed(2), jitter_p=1.0, blur_p=1.0)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[i], out[j])


def test_strong_augment_is_reproducible_with_a_generator() -> None:
    images = _texture()
    first = strong_augment(images, torch.Generator().manual_seed(5))
    again = strong_augment(images, torch.Generator().manual_seed(5))
    other = strong_augment(images, torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_strong_augment_blur_smooths() -> None:
    images = _texture(n=2, size=64)
    # sigma near the default minimum (0.15) is practically the identity, so draw strong blurs only
    out = strong_augment(images, torch.Generator().manual_seed(0), jitter_p=0.0, blur_p=1.0, blur_sigma=(0.9, 1.15))
    top = slice(0, 24)  # rows away from the black padding block

    def roughness(x: torch.Tensor) -> torch.Tensor:
        return (x[:, :, top, 1:] - x[:, :, top, :-1]).abs().mean(dim=(1, 2, 3))

    assert torch.all(roughness(out) < 0.8 * roughness(images))


def test_strong_augment_grey_image_keeps_hue_and_saturation_neutral() -> None:
    images = torch.full((2, 3, 8, 8), 100.0)
    out = strong_augment(images, torch.Generator().manual_seed(0), jitter_p=1.0, blur_p=0.0)
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=1e-3, rtol=0)  # still grey: no colour cast
    torch.testing.assert_close(out[:, 1], out[:, 2], atol=1e-3, rtol=0)


def _mid_range(n: int = 4, size: int = 16) -> torch.Tensor:
    """Colourful pixels in 80..170, far enough from 0 and 255 that no jitter step clamps."""
    g = torch.Generator().manual_seed(7)
    return 80.0 + 90.0 * torch.rand(n, 3, size, size, generator=g)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def test_strong_augment_brightness_scales_each_image() -> None:
    images = _mid_range()
    out = strong_augment(images, None, jitter_p=1.0, contrast=0.0, saturation=0.0, hue=0.0, blur_p=0.0)
    ratio = (out / images).flatten(1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))  # one factor per image
    assert torch.all((ratio >= 0.8 - 1e-5) & (ratio <= 1.2 + 1e-5))


def test_strong_augment_contrast_keeps_the_mean_grey() -> None:
    images = _mid_range()
    out = strong_augment(images, None, jitter_p=1.0, brightness=0.0, saturation=0.0, hue=0.0, blur_p=0.0)
    torch.testing.assert_close(_luma(out).mean(dim=(1, 2)), _luma(images).mean(dim=(1, 2)))
    assert not torch.allclose(out, images)


def test_strong_augment_saturation_and_hue_keep_luma() -> None:
    images = _mid_range()
    out = strong_augment(
        images, torch.Generator().manual_seed(0), jitter_p=1.0, brightness=0.0, contrast=0.0, blur_p=0.0
    )
    torch.testing.assert_close(_luma(out), _luma(images), atol=1e-3, rtol=0)
    assert (out - images).abs().amax() > 1.0  # the colours did move


def test_strong_augment_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="float"):
        strong_augment(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="jitter_p"):
        strong_augment(torch.zeros(1, 3, 4, 4), jitter_p=2.0)
