"""Size, seed and difficulty of the synthetic OpenEarthMap + OpenEarthMap-SAR (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticConfig:
    """Size, seed and difficulty of the synthetic OEM + OEM-SAR data set.

    Attributes:
        seed: master seed; every tile draws from its own stream seeded by (seed, dataset, index).
        tile_size: side of the OEM-SAR tiles and of most OEM tiles (a few OEM tiles are 3/4 of it).
        oem_regions: number of OEM regions (city names cycled from a fixed list). The default 9 x 4 tiles
            keeps the real proportion of the two datasets: about 5000 OpenEarthMap images to 4333
            OEM-SAR train tiles (docs/data.md), so 36 to the miniature's 32.
        oem_tiles_per_region: OEM tiles per region.
        sar_train_tiles: OEM-SAR train tiles (the last one has no RGB partner).
        sar_val_tiles: OEM-SAR val tiles.
        sar_test_tiles: OEM-SAR test tiles.
        speckle_looks: looks of the gamma speckle (lower = noisier SAR).
        label_noise: strength of the corruption of the OEM-SAR train labels (0 = clean copies,
            0.3 = ~60-65 % pixel agreement, 1 = ~25 %).
        domain_gap: 0 renders the OEM-SAR optical images exactly like OEM, at the same scale; 1 is
            the full gap (style, resolution and scale) of the generator before its calibration. The
            default 0.35 puts a source-only optical model's target-domain score, at the demo's
            budget, at the real proportion of its source score (about 0.84: OEM-SAR optical on
            pseudo-labels 56.56, the OEM-SAR README, against 65-69 for U-Nets on OpenEarthMap;
            measured in BENCHMARKS.md).
        optical_resolution_range: range of the effective resolution r of an OEM-SAR optical tile
            relative to the pixels of its optical source, before the source is resampled onto the SAR
            grid (r = 0.1: a 10x coarser image), drawn per tile, uniformly. The only statement of
            the real OEM vs OEM-SAR optical resolution gap we found is the target of the reference
            RAA (StuLiu/DFC2025Track1, ``RandomDownUp(ratio_range=(0.1, 0.35))``), relative to the
            pixels of 1024 px tiles.
            The miniature draws a real tile's content into 256 px (roads 3-7 px wide instead of
            20-40 px), so the same loss of content is r x 4, capped at 1: the default (0.4, 1.0).
            (0.1, 0.35) applies the reference range per pixel, which blurs away what a real tile
            keeps. The blur factor is ``1 + domain_gap * (1 / r - 1)``, so ``domain_gap=0`` stays sharp.
        nodata_test_fraction: fraction of the test SAR tiles with a black no-data wedge.
        oem_gsd_range: GSD range of OpenEarthMap (metres, docs/data.md): the OEM tiles' geotransforms
            and the optical source of every OEM-SAR tile. The miniature's native pixel is an OEM pixel.
        sar_gsd_range: GSD range of the OEM-SAR grids (metres, docs/data.md). Each OEM-SAR tile draws
            its grid GSD g and an optical source GSD g_o from ``oem_gsd_range``; its scene appears
            ``1 + domain_gap * (g_o / g - 1)`` times larger than at the native scale (0.5-3.3 at
            ``domain_gap`` 1, the GSD ranges' full scale gap that RAA's enlargement u ~ U(1, 3) models;
            0.82-1.8 with the default 0.35), and its optical
            image is rendered at the native scale and resampled onto the grid.
        changed_objects: probability that an object of the OEM-SAR scene (a building, a tree
            cluster, a bare, developed or rangeland region) looked different when its optical partner
            was taken (``sar_synthetic.acquisition.CHANGES``): the SAR and the truth show the SAR date.
        seasonal_swap: probability that an agriculture parcel looked bare (ploughed, harvested) or
            fallow (rangeland) in its optical partner: the two acquisitions are of other seasons.
        optical_shift_max: misregistration of the optical partner on the SAR grid: each OEM-SAR
            optical tile is shifted by a whole number of pixels drawn from [-max, max] along each axis.
            The three differences reach the official labels through the optical image, as in the
            real data; all 0 give the earlier generator's tiles, byte for byte.
    """

    seed: int = 0
    tile_size: int = 256
    oem_regions: int = 9
    oem_tiles_per_region: int = 4
    sar_train_tiles: int = 32
    sar_val_tiles: int = 16
    sar_test_tiles: int = 8
    speckle_looks: float = 2.0
    label_noise: float = 0.3
    domain_gap: float = 0.35
    optical_resolution_range: tuple[float, float] = (0.4, 1.0)
    nodata_test_fraction: float = 0.35
    oem_gsd_range: tuple[float, float] = (0.25, 0.5)
    sar_gsd_range: tuple[float, float] = (0.15, 0.5)
    changed_objects: float = 0.05
    seasonal_swap: float = 0.1
    optical_shift_max: int = 1

    @classmethod
    def tiny(cls) -> SyntheticConfig:
        """The smallest useful dataset (64 px tiles, a handful of each): tests and quick checks."""
        return cls(seed=1, tile_size=64, oem_regions=2, oem_tiles_per_region=3, sar_train_tiles=6, sar_val_tiles=2,
                   sar_test_tiles=3)  # fmt: skip

    def __post_init__(self) -> None:
        counts = (
            self.oem_regions,
            self.oem_tiles_per_region,
            self.sar_train_tiles,
            self.sar_val_tiles,
            self.sar_test_tiles,
        )
        problems = [
            (self.seed < 0, f"seed must be >= 0, got {self.seed}"),
            (self.tile_size < 32, f"tile_size must be >= 32, got {self.tile_size}"),
            (min(counts) < 0, f"tile and region counts must be >= 0, got {counts}"),
            (self.speckle_looks <= 0, f"speckle_looks must be > 0, got {self.speckle_looks}"),
            (self.label_noise < 0, f"label_noise must be >= 0, got {self.label_noise}"),
            (self.domain_gap < 0, f"domain_gap must be >= 0, got {self.domain_gap}"),
            *(
                (not 0 <= value <= 1, f"{name} must be in [0, 1], got {value}")
                for name, value in (("changed_objects", self.changed_objects), ("seasonal_swap", self.seasonal_swap))
            ),
            (self.optical_shift_max < 0, f"optical_shift_max must be >= 0, got {self.optical_shift_max}"),
            (
                len(self.optical_resolution_range) != 2
                or not 0 < self.optical_resolution_range[0] <= self.optical_resolution_range[-1] <= 1,
                f"optical_resolution_range must be (low, high) with 0 < low <= high <= 1, "
                f"got {self.optical_resolution_range}",
            ),
            *(
                (
                    len(value) != 2 or not 0 < value[0] <= value[-1],
                    f"{name} must be (low, high) in metres with 0 < low <= high, got {value}",
                )
                for name, value in (("oem_gsd_range", self.oem_gsd_range), ("sar_gsd_range", self.sar_gsd_range))
            ),
            (
                not 0 <= self.nodata_test_fraction <= 1,
                f"nodata_test_fraction must be in [0, 1], got {self.nodata_test_fraction}",
            ),
        ]
        errors = [message for failed, message in problems if failed]
        if errors:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(errors))
