"""Files -> batches: the class table, the official layouts, validated raster I/O, augmentation, datasets
and the two LightningDataModules."""
