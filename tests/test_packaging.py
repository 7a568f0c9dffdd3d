"""An installed opsaudit has every module and data file of the source tree: each folder that holds
code or data is a package of pyproject.toml (checks.metrics and web.pages once were not, and an
install that was not editable lacked them; the data folders made setuptools warn on every build)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Read from the checkout only: the source mappings of the acceptance runs on ../shared/real-data.
NOT_SHIPPED = ("opsaudit.config.examples",)


def shipped_folders() -> dict[str, Path]:
    """Every folder below the package-dir roots that holds a file, by its dotted name."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders: dict[str, Path] = {}
    for package, folder in setup["package-dir"].items():
        root = ROOT / folder
        for path in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            parts = path.relative_to(root).parts
            if "__pycache__" in parts or not any(child.is_file() for child in path.iterdir()):
                continue
            folders[".".join((package, *parts))] = path
    return folders


def test_every_folder_of_code_or_data_is_a_package_or_inside_ones_data():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages, data = set(setup["packages"]), setup["package-data"]
    missing = []
    for name, path in shipped_folders().items():
        if name in packages or name.startswith(NOT_SHIPPED):
            continue
        parent, _, child = name.rpartition(".")
        # A folder that is no Python name (zh-CN) ships as data of the package above it.
        if child.isidentifier() or not any(pattern.startswith(f"{child}/") for pattern in data.get(parent, [])):
            missing.append(f"{name} ({path.relative_to(ROOT)})")
    assert missing == []
