"""The report's cut Chinese font (reports/fonts.py): what it holds, how it is built, and that a
character outside it is still set, in the full font."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fontTools.ttLib import TTFont

from opsaudit.reports import fonts
from opsaudit.reports.render import write_pdf


def test_the_cut_holds_gb2312_and_every_character_of_opsaudits_chinese_texts() -> None:
    chosen = fonts.characters()
    catalogue = Path(__file__).parents[1] / "opsaudit" / "i18n" / "messages" / "zh-CN"
    texts = {ord(ch) for path in catalogue.glob("*.yaml") for ch in path.read_text(encoding="utf-8")
             if not ch.isspace()}
    assert texts and texts <= chosen
    # GB 2312 has 6,763 characters of Chinese: common names and terms, never a rare one.
    assert len({code for code in chosen if 0x4E00 <= code <= 0x9FFF}) >= 6763
    assert {ord(ch) for ch in "稽查整改赵钱孙李伟芳娜"} <= chosen
    assert ord("堃") not in chosen


def test_make_fonts_built_both_weights_with_every_character_the_full_font_has() -> None:
    built = {weight: fonts.font_file(fonts.font_folder(), weight) for weight in fonts.WEIGHTS}
    assert all(path.is_file() for path in built.values()), "run `make fonts`"
    wanted = fonts.characters()
    for weight, path in built.items():
        source, index = fonts.source_font(weight)
        full = set(TTFont(str(source), fontNumber=index, lazy=True).getBestCmap())
        assert set(TTFont(str(path)).getBestCmap()) == wanted & full, weight
    assert fonts.face_rules().count("@font-face") == 2


def test_building_cuts_each_weight_to_the_characters_asked(tmp_path: Path) -> None:
    written = fonts.build(tmp_path, {ord(ch) for ch in "稽查报告AB"})
    assert [path.name for path in written] == ["NotoSansCJKsc-Regular-subset.otf", "NotoSansCJKsc-Bold-subset.otf"]
    for path in written:
        assert sorted(TTFont(str(path)).getBestCmap()) == sorted(ord(ch) for ch in "稽查报告AB")
        assert path.stat().st_size < 20_000
    rules = fonts.face_rules(tmp_path)
    assert rules.count(f'font-family: "{fonts.FAMILY}"') == 2 and written[0].as_uri() in rules
    assert fonts.face_rules(tmp_path / "none") == ""


def test_a_character_outside_the_cut_is_set_in_the_full_font(tmp_path: Path) -> None:
    html = (f'<html><body style=\'font-family: "{fonts.FAMILY}", "Noto Sans CJK SC"\'>'
            "<p>客服王堃</p><p><b>稽查报告</b></p></body></html>")
    pdf = write_pdf(html, tmp_path / "rare.pdf")
    listed = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    names = sorted(line.split()[0].split("+", 1)[1] for line in listed.splitlines()[2:])
    assert names == ["Noto-Sans-CJK-SC", "Noto-Sans-CJK-SC-Subset", "Noto-Sans-CJK-SC-Subset-Bold"], listed
    shown = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                           text=True).stdout
    assert "客服王堃" in shown and "稽查报告" in shown
