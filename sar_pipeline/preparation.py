"""A pipeline's data preparation: stages that make its data root before the method runs on it.

The pipeline itself knows only a data root. A preparation (the demo's is
``sar_demo.preparation.DemoPreparation``: generate the synthetic miniature, make its official labels)
is named in the pipeline YAML by ``class_path`` and adds its stages in front of the method's, for the
one data root it makes; on any other data root it adds nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sar_pipeline.stages import Stage, StageBuilder


class DataPreparation(ABC):
    """Stages that make a data root (e.g. generate it), run before the method's stages."""

    @abstractmethod
    def prepares(self, data_root: Path) -> bool:
        """Whether this preparation makes ``data_root`` (resolved); only then are its stages run."""

    @abstractmethod
    def stages(self, builder: StageBuilder) -> list[Stage]:
        """The preparation's stages, in order (they run before the method's)."""

    @abstractmethod
    def describe(self) -> str:
        """One sentence for error messages: which data root this preparation makes, and how to point it elsewhere."""

    def models(self) -> list[str]:
        """Names of the models this preparation fits, which a stage-1 model may be initialised from."""
        return []

    def checkpoint(self, name: str, builder: StageBuilder) -> str:
        """The fitted checkpoint of one of :meth:`models` (a placeholder naming it before it is fitted)."""
        raise KeyError(f"the data preparation fits no model called {name!r}")

    def problems(self) -> list[str]:
        """What makes this preparation unable to run, one line each (checked before any stage starts)."""
        return []
