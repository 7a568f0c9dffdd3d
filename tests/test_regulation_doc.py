"""docs/regulation.md stays true (issue 21, item 7): it names every rule of the catalogue and no
rule that is not there, every test it cites exists and a row names its tests by function, every
clause of seed 000 has its row, and its summary counts its rows. Files are only read: the tests it
cites are parsed, never imported."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from opsaudit.checks.quality_config import RULES_FILE, load_rules
from opsaudit.checks.spec import AREA_FILES, CHECKS_DIR, load_area
from opsaudit.config.loader import read_yaml
from opsaudit.store.findings import MANUAL

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "regulation.md"
SEEDS = ROOT.parent / "shared" / "seeds"
STATUSES = ("tested", "partial", "not enforceable")

BACKTICKED = re.compile(r"`([^`\n]+)`")
RULE_ID = re.compile(r"\b(?:cs|exec|plan|data|dq)\.[a-z][a-z_]*\b")
TEST_REF = re.compile(r"\btests/[\w/]+\.py(?:::\w+)*")
NUMERALS = "一二三四五六七八九十"
SEED_000_HEADING = "## Seed 000"
STANDARDS_HEADING = "## Seeds 001–004"
PARTS = {SEED_000_HEADING: "Seed 000 clauses", STANDARDS_HEADING: "Seeds 001–004 standards"}


def catalogue(folder: Path = CHECKS_DIR) -> set[str]:
    """Every rule id of the rule files in `folder`, read by the project's own loaders, and the rule
    of a finding an auditor records by hand (`manual`, `opsaudit findings add`)."""
    ids = {MANUAL}
    area_of = {name: area for area, name in AREA_FILES.items()}
    for path in sorted(folder.glob("*.yaml")):
        if path.name in area_of:
            ids |= set(load_area(area_of[path.name], path).rules)
        elif path.name == RULES_FILE.name:
            ids |= set(load_rules(path).rules.model_dump(by_alias=True))
        else:  # a rule file the loaders do not know yet still declares its rules under `rules:`
            ids |= set(read_yaml(path).get("rules") or {})
    return ids


def named_rules(text: str) -> set[str]:
    """The rule ids the document names: inside backticks, as `cs.satisfaction_rate`."""
    return {rule for span in BACKTICKED.findall(text) for rule in RULE_ID.findall(span)} | (
        {MANUAL} if f"`{MANUAL}`" in text else set())


def section(text: str, heading: str) -> str:
    """The part of the document from the level-2 heading starting with `heading` to the next one."""
    start = text.index(f"\n{heading}")
    following = text.find("\n## ", start + 1)
    return text[start:following if following != -1 else len(text)]


def rows(part: str) -> list[list[str]]:
    """The clause rows of one part's tables: their cells, without the header and rule lines."""
    found = []
    for line in part.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|-: ") and cells[-1] != "status":
            found.append(cells)
    return found


def defined_names(path: Path) -> set[str]:
    """The module's functions and classes, and each class's methods as `Class::method`."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names |= {f"{node.name}::{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
    return names


def numbered(text: str, marker: str) -> list[tuple[int, str]]:
    """`text` cut at the markers numbered 1, 2, 3 … in order (a marker out of sequence is prose)."""
    parts: list[tuple[int, str]] = []
    expected, start = 1, None
    for match in re.finditer(marker, text):
        number = NUMERALS.index(match[1]) + 1 if match[1] in NUMERALS else int(match[1])
        if number != expected:
            continue
        if start is not None:
            parts.append((expected - 1, text[start:match.start()]))
        start, expected = match.end(), expected + 1
    if start is not None:
        parts.append((expected - 1, text[start:]))
    return parts


def seed_clauses(text: str) -> tuple[set[str], set[str]]:
    """Seed 000's clause numbers: the clauses (3.4.2; 1.1 when it has no items) and the headings
    above them (3, 3.4). 三、(四) 2. is 3.4.2."""
    body = next(line for line in text.splitlines() if "一、" in line)
    clauses: set[str] = set()
    headings: set[str] = set()
    for chapter, chapter_text in numbered(body, f"([{NUMERALS}])、"):
        headings.add(str(chapter))
        for part, part_text in numbered(chapter_text, f"[(（]([{NUMERALS}])[)）]"):
            items = numbered(part_text, r"(?<!\d)(\d)[.．]")
            if items:
                headings.add(f"{chapter}.{part}")
            clauses |= {f"{chapter}.{part}.{item}" for item, _ in items} or {f"{chapter}.{part}"}
    return clauses, headings


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_rule_of_the_catalogue_is_in_the_document(doc):
    missing = catalogue() - named_rules(doc)
    assert not missing, f"docs/regulation.md does not name these rules of the catalogue: {sorted(missing)}"


def test_a_rule_added_to_the_catalogue_and_not_to_the_document_is_caught(doc, tmp_path):
    """The check above on a copy of checks/ with one rule more: that rule, and only it, is missing."""
    for path in CHECKS_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    spec = read_yaml(tmp_path / AREA_FILES["customer_service"])
    spec["rules"]["cs.callback_rate"] = {"version": 1, "kind": "rate", "metric": "ticket_revisit", "target": 0.9,
                                         "entities": {"department": {}}}
    (tmp_path / AREA_FILES["customer_service"]).write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    assert catalogue(tmp_path) - named_rules(doc) == catalogue() - named_rules(doc) | {"cs.callback_rate"}


def test_every_rule_the_document_names_exists(doc):
    unknown = named_rules(doc) - catalogue()
    assert not unknown, f"docs/regulation.md names rules the catalogue lacks: {sorted(unknown)}"


def test_every_test_the_document_cites_exists(doc):
    references = sorted(set(TEST_REF.findall(doc)))
    assert len(references) > 50
    wrong = []
    for reference in references:
        file, *name = reference.split("::")
        path = ROOT / file
        if not path.is_file():
            wrong.append(f"{reference}: no file {file}")
        elif name and "::".join(name) not in defined_names(path):
            wrong.append(f"{reference}: {file} defines no {'::'.join(name)}")
    assert not wrong, "docs/regulation.md cites tests that do not exist:\n" + "\n".join(wrong)


def test_every_row_names_the_tests_that_prove_it_by_function(doc):
    """A file alone proves nothing in particular: a row's proof names the test function."""
    bare = [f"{cells[0]} {reference}" for heading in PARTS for cells in rows(section(doc, heading))
            for reference in TEST_REF.findall(cells[-2]) if "::" not in reference]
    assert not bare, f"docs/regulation.md cites test files without a test: {bare}"


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"{SEEDS} is not there (../shared)")
def test_every_clause_of_seed_000_has_its_row(doc):
    [seed] = SEEDS.glob("000_*")
    clauses, headings = seed_clauses(seed.read_text(encoding="utf-8"))
    assert {"1.1", "3.4.2", "4.2.2", "5.2.1", "6.1.3", "6.3.3", "7.2.3"} <= clauses
    part = section(doc, SEED_000_HEADING)
    numbers = [cells[0].removeprefix("§") for cells in rows(part)]
    duplicated = [number for number, count in Counter(numbers).items() if count > 1]
    assert not duplicated, f"one row per clause: {duplicated}"
    assert set(numbers) == clauses, (f"clauses without a row: {sorted(clauses - set(numbers))}; "
                                     f"rows of no clause: {sorted(set(numbers) - clauses)}")
    titled = set(re.findall(r"^#{3,4} §([\d.]+) ", part, flags=re.MULTILINE))
    assert headings <= titled, f"headings missing: {sorted(headings - titled)}"


def test_every_row_has_a_status_and_the_summary_counts_them(doc):
    summary = {cells[0]: cells[1:] for cells in rows(section(doc, "## Summary"))}
    for heading, label in PARTS.items():
        statuses = [cells[-1] for cells in rows(section(doc, heading))]
        assert set(statuses) <= set(STATUSES), f"{label}: unknown status {set(statuses) - set(STATUSES)}"
        counted = Counter(statuses)
        expected = [str(len(statuses)), *(str(counted[status]) for status in STATUSES)]
        assert summary[label] == expected, f"{label}: the summary says {summary[label]}, the rows {expected}"
