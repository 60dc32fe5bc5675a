"""The synthetic miniature of OpenEarthMap and OpenEarthMap-SAR; its only output is a data root in the
official layout."""
