"""The synthetic miniature of OpenEarthMap and OpenEarthMap-SAR; its only output is a data root in the
official layout (``layout_writer.generate_demo_data``, the ``make-demo-data`` command).

Nothing is downloaded. One scene generator draws land-cover layouts (parcels of fields, rangeland,
bareland and developed blocks; rotated buildings in streets; tree clusters; rivers and ponds;
crossing roads). Each scene is rendered as

* a sharp optical image (OpenEarthMap style),
* an optical image in the OpenEarthMap-SAR style: another season and colour balance, haze and a
  lower effective resolution drawn per tile (by default r ~ U(0.4, 1.0) of its source's pixels: the
  range the reference resolution alignment augmentation was designed for, U(0.1, 0.35) of a 1024 px
  tile, scaled to the miniature's content, see ``optical_resolution_range``), all scaled by
  ``domain_gap`` (0 renders exactly like OEM; the default 0.35 is calibrated, see ``config``), and
  taken at another date than its SAR tile (``acquisition``: changed objects, fields in another
  season, a misregistration),
* a SAR amplitude image: class-dependent backscatter, double-bounce building edges and radar
  shadows, multiplicative gamma speckle, a per-tile relative 8-bit scaling with ~10-22 % exact
  zeros inside the valid area (the real Umbra sample has ~24 %), and black border-connected no-data
  wedges on some test tiles.

The OEM-SAR train labels are a stand-in for the official pseudo-labels: the truth corrupted by
whole-object class confusions, smoothing, boundary bleeding, wrong patches, a small misregistration
and a little class 0. The truth stays available in ``train/labels_truth``. The demo's preparation
(``sar_demo``) replaces these labels by a source-only optical model's prediction, which is how the
real ones were made; the noise model stays the quick default and the knob of the label-noise sweep.
Water is dark in SAR (~80 % exact zeros, rarely a solid zero block of a few % of a tile, as calm
water in real data); no-data wedges are solid, straight-edged, cut at a corner, 5-30 % of a tile.

Modules, one job each: ``config`` (SyntheticConfig), ``tiles`` (which tiles exist, their names,
splits and random streams), ``scene`` (layouts), ``optical`` and ``sar`` (rendering), ``acquisition``
(the optical date's differences), ``label_noise``, ``georeference``, ``arrays`` and ``class_values``
(shared helpers), ``layout_writer`` (the demo's data root), ``replica`` (the same tiles in the real
download's layout and tile size) and ``profiles`` (``make-demo-data --profile``: which of the two).

Measured before the calibration (``domain_gap`` 1, 16 OEM tiles, no acquisition differences;
``python benchmarks/synthetic_data_check.py``, seeds 0 and 1, on a
2-core machine shared with two training runs): generation 9-13 s. Class shares of the truth:
bareland ~3-6 %, rangeland ~19-20 %, developed ~17-20 %, road ~9 %, tree ~14-19 %, water ~4 %,
agriculture ~17-22 %, building ~8-9 %.
Noisy train labels agree with the truth on ~63-65 % of the pixels (mIoU 0.50-0.51 against it). A
nearest-class-mean classifier on 5x5-averaged SAR reaches val mIoU 0.19-0.25 (pixel accuracy
29-36 %; chance ~0.06): buildings are easy, rangeland/agriculture and road/bareland are not.
An RGB nearest-class-mean classifier fitted on OEM train reaches mIoU 0.43-0.47 on OEM val but
0.25-0.32 on the OEM-SAR train optical images (0.40-0.41 with ``domain_gap=0``); their mean
neighbour difference ("sharpness") is 0.35-0.36 of OEM's (1.0-1.1 with ``domain_gap=0``).
"""
