"""The Chinese font of the report PDFs: Noto Sans CJK SC cut down to GB 2312, the usual Western
and CJK punctuation, and every character of opsaudit's own texts.

WeasyPrint copies each font it embeds into memory whole and reads it through: the Noto CJK
collection is 19 MB a weight (SC, TC, JP, KR and HK together), the cut 3 MB. A report of 2,000
agents needs about 60 MB less at its peak. A character outside the cut (a rare character in a
name) is set in the full font, which the report lists next.

Built once on set-up (`make fonts` runs `python -m opsaudit.reports.fonts`); without it the PDFs
use the full font as before.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from opsaudit.errors import InputError, os_reason
from opsaudit.i18n.render import Message

FAMILY = "Noto Sans CJK SC Subset"
SOURCE_FAMILY = "Noto Sans CJK SC"
# CSS weight -> fontconfig's weight and the file's style name.
WEIGHTS = {400: (80, "Regular"), 700: (200, "Bold")}
# Latin, general punctuation, letterlike symbols, arrows, mathematical operators, enclosed
# numbers, box drawing and geometric shapes, CJK punctuation, full-width forms.
RANGES = ((0x20, 0x17F), (0x2000, 0x206F), (0x2100, 0x22FF), (0x2460, 0x25FF), (0x3000, 0x303F),
          (0xFF00, 0xFFEF))


def font_folder() -> Path:
    """Where the cut fonts live: beside the environment opsaudit is installed in."""
    return Path(sys.prefix) / "share" / "opsaudit" / "fonts"


def font_file(folder: Path, weight: int) -> Path:
    return folder / f"NotoSansCJKsc-{WEIGHTS[weight][1]}-subset.otf"


def face_rules(folder: Path | None = None) -> str:
    """@font-face rules for the cut fonts that are built; empty when none is."""
    folder = folder or font_folder()
    return "\n".join(f'@font-face {{ font-family: "{FAMILY}"; font-weight: {weight}; '
                     f'src: url("{font_file(folder, weight).as_uri()}"); }}'
                     for weight in WEIGHTS if font_file(folder, weight).is_file())


def characters() -> set[int]:
    """GB 2312's characters, RANGES, and every character of opsaudit's messages and templates."""
    chosen = {code for low, high in RANGES for code in range(low, high + 1)}
    for first in range(0xA1, 0xF8):
        for second in range(0xA1, 0xFF):
            try:
                chosen.add(ord(bytes((first, second)).decode("gb2312")))
            except UnicodeDecodeError:
                continue  # an unassigned code point of the table
    for path in _own_texts():
        chosen |= {ord(ch) for ch in path.read_text(encoding="utf-8") if not ch.isspace()}
    return chosen


def _own_texts() -> Iterable[Path]:
    yield from Path(str(files("opsaudit.i18n") / "messages")).rglob("*.yaml")
    yield from Path(str(files("opsaudit.reports") / "templates")).glob("*")


def source_font(weight: int) -> tuple[Path, int]:
    """The installed Noto Sans CJK SC of that weight: its file and its index in the collection."""
    fc_weight, style = WEIGHTS[weight]
    try:
        found = subprocess.run(["fc-match", "-f", "%{family}\n%{file}\n%{index}",
                                f"{SOURCE_FAMILY}:weight={fc_weight}"], capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise InputError(Message.of("error.fonts.no_tool", tool="fc-match", system="Debian",
                                    package="fontconfig")) from None
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = (Message.of("error.fonts.exit_status", code=exc.returncode)
                  if isinstance(exc, subprocess.CalledProcessError) else os_reason(exc))
        raise InputError(Message.of("error.fonts.lookup", tool="fc-match", family=SOURCE_FAMILY, reason=reason)) \
            from None
    families, file, index = (found.stdout.splitlines() + ["", "", ""])[:3]
    if SOURCE_FAMILY not in families.split(","):
        raise InputError(Message.of("error.fonts.not_installed", family=SOURCE_FAMILY, style=style, system="Debian",
                                    package="fonts-noto-cjk"))
    return Path(file), int(index or 0)


def build(folder: Path, codes: set[int] | None = None) -> list[Path]:
    """Cut each weight of the installed font down to `codes` (default: characters()) into folder."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    codes = characters() if codes is None else codes
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for weight in WEIGHTS:
        path, index = source_font(weight)
        font = TTFont(str(path), fontNumber=index, lazy=True)
        options = subset.Options()
        options.layout_features = ["*"]  # vertical forms, proportional punctuation and the like
        options.name_IDs = ["*"]
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=codes)
        subsetter.subset(font)
        target = font_file(folder, weight)
        partial = target.with_suffix(".partial")
        font.save(str(partial))
        partial.replace(target)  # a report never reads a half-written font
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cut Noto Sans CJK SC down for the report PDFs.")
    parser.add_argument("--folder", type=Path, default=font_folder())
    parser.add_argument("--if-missing", action="store_true", help="do nothing when every weight is built")
    args = parser.parse_args(argv)
    if args.if_missing and all(font_file(args.folder, weight).is_file() for weight in WEIGHTS):
        return
    try:
        written = build(args.folder)
    except InputError as exc:
        sys.exit(str(exc))
    print(f"fonts: {', '.join(str(path) for path in written)}")


if __name__ == "__main__":
    main()
