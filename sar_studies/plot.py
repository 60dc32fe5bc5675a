"""A horizontal bar chart with error bars, drawn with PIL (matplotlib is not a dependency)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BAR = (0x22, 0x61, 0x26)
WHISKER = (0, 0, 0)


def bar_chart(items: list[tuple[str, float | None, float | None]], path: Path, title: str, width: int = 900) -> Path:
    """Draw ``(label, mean, std)`` bars on a 0..max scale and save a PNG; missing means are left empty.

    Args:
        items: one bar per item, top to bottom.
        path: PNG to write.
        title: line above the chart.
        width: image width in pixels.

    Returns:
        ``path``.
    """
    font = ImageFont.load_default()
    row, label_width, top = 22, 330, 40
    height = top + row * len(items) + 30
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), title, fill=WHISKER, font=font)
    values = [m + (s or 0) for _, m, s in items if m is not None and math.isfinite(m)]
    scale_max = max(values, default=1.0) or 1.0
    plot_width = width - label_width - 60

    def x(value: float) -> int:
        return label_width + round(plot_width * value / scale_max)

    for i, (label, mean, std) in enumerate(items):
        y = top + i * row
        draw.text((10, y + 4), label[:52], fill=WHISKER, font=font)
        if mean is None or not math.isfinite(mean):
            continue
        draw.rectangle([label_width, y + 3, x(mean), y + row - 5], fill=BAR)
        if std:
            centre = y + row // 2
            draw.line([x(mean - std), centre, x(mean + std), centre], fill=WHISKER, width=2)
        draw.text((x(mean + (std or 0)) + 6, y + 4), f"{mean:.3f}", fill=WHISKER, font=font)
    axis = top + row * len(items) + 5
    draw.line([label_width, axis, label_width + plot_width, axis], fill=WHISKER)
    draw.text((label_width, axis + 5), "0", fill=WHISKER, font=font)
    draw.text((label_width + plot_width - 30, axis + 5), f"{scale_max:.2f}", fill=WHISKER, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
