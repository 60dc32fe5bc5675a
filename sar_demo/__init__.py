"""The demo's data preparation: the synthetic miniature generated into the demo's own data root and its
official labels made as the real ones were (a source-only optical model's pseudo-labels).

Production code (datamodules, the pipeline spec) knows only a data root; the demo pipeline names
``sar_demo.preparation.DemoPreparation`` as its ``prepare`` step.
"""
