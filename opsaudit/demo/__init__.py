"""The deterministic demo company generator (`build_demo`) and what it plants."""

from opsaudit.demo.generator import DemoSummary, build_demo
from opsaudit.demo.planted import PlantedProblem

__all__ = ["DemoSummary", "PlantedProblem", "build_demo"]
