"""The rectification follow-up mail: reminders, escalations and the weekly progress report.

Each message is built once as a neutral body of blocks (paragraphs, headings, tables) and written
twice, as plain text and as HTML, every word from the catalogue in the recipient's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from html import escape
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import RowMapping

from opsaudit.reports.outbox import Address, OutgoingMail
from opsaudit.reports.recipients import Directory
from opsaudit.settings import Settings
from opsaudit.web.links import finding_url

if TYPE_CHECKING:
    from opsaudit.progress import Progress
    from opsaudit.store.lifecycle import MajorHandling
    from opsaudit.tracking import Step

# A mail names at most this many findings and says how many more there are.
MAIL_ROWS = 100


@dataclass(frozen=True)
class Link:
    """Words that lead to a page of `opsaudit web`: a link in HTML; in text, the words and then the
    address on a line of its own, since a plain-text reader shows no links."""

    text: str
    url: str


Cell = str | Link


@dataclass
class Body:
    """A message body as blocks, rendered to text and to HTML in `language`.

    A table is written out in text as numbered items with one `name: value` line per column, and
    the address of a row whose first cell is a Link; a compact table (figures) as one line per row.
    """

    language: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def paragraph(self, text: str) -> Body:
        self.blocks.append(("p", text))
        return self

    def heading(self, text: str) -> Body:
        self.blocks.append(("h", text))
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Cell]], *, compact: bool = False) -> Body:
        self.blocks.append(("table", (list(header), [list(row) for row in rows], compact)))
        return self

    def link(self, url: str) -> Body:
        """`处理页面：<url>`: where the reader acts, in a paragraph of its own."""
        self.blocks.append(("link", url))
        return self

    def _field(self, name: str, value: str) -> str:
        return _t("rectification.mail.field", self.language, name=name, value=value)

    def _page(self) -> str:
        return _t("rectification.mail.page", self.language)

    def text(self) -> str:
        lines: list[str] = []
        for kind, content in self.blocks:
            if kind == "table":
                header, rows, compact = content
                for number, row in enumerate(rows, start=1):
                    pairs = list(zip(header[1:], row[1:], strict=True))
                    if compact:
                        lines.append(self._field(row[0], _t("format.list_separator", self.language).join(
                            f"{name} {value}" for name, value in pairs)))
                        continue
                    lines.append(f"{number}. {_words(row[0])}")
                    lines.extend(f"   {self._field(name, _words(value))}" for name, value in pairs)
                    if isinstance(row[0], Link):
                        lines.append(f"   {self._field(self._page(), row[0].url)}")
            elif kind == "link":
                lines.append(self._field(self._page(), content))
            else:
                lines.append(f"【{content}】" if kind == "h" else content)
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def html(self) -> str:
        parts = ['<html><head><meta charset="utf-8"></head>'
                 '<body style="font-family: sans-serif; font-size: 14px; color: #222">']
        for kind, content in self.blocks:
            if kind == "table":
                header, rows, _ = content
                cell = 'style="border: 1px solid #ccc; padding: 4px 8px; text-align: left"'
                head = "".join(f"<th {cell}>{escape(name)}</th>" for name in header)
                body = "".join("<tr>" + "".join(f"<td {cell}>{_html(value)}</td>" for value in row) + "</tr>"
                               for row in rows)
                parts.append(f'<table style="border-collapse: collapse"><tr style="background: #f2f2f2">{head}</tr>'
                             f"{body}</table>")
            elif kind == "link":
                # The address where the field's value goes (an empty value would read as a dash).
                before, _, after = self._field(self._page(), "\0").partition("\0")
                parts.append(f"<p>{escape(before)}{_html(Link(content, content))}{escape(after)}</p>")
            elif kind == "h":
                parts.append(f'<h3 style="font-size: 15px">{escape(content)}</h3>')
            else:
                parts.append(f"<p>{escape(content)}</p>")
        return "".join(parts) + "</body></html>"


def _words(cell: Cell) -> str:
    return cell.text if isinstance(cell, Link) else cell


def _html(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="{escape(cell.url)}">{escape(cell.text)}</a>'
    return escape(cell)


def _t(key: str, language: str, **values: Any) -> str:
    from opsaudit.i18n import text

    return text(key, language, **values)


def _date(moment: datetime, zone: tzinfo, language: str) -> str:
    """The local date of an instant; the store gives SQLite's back without its zone (UTC)."""
    from opsaudit.i18n import format_value
    from opsaudit.store.times import from_db

    return format_value(from_db(moment, zone), "date", language)


def _next_step(finding: RowMapping, language: str) -> str:
    status = finding["status"]
    if status == "open":
        status = "open_general" if finding["severity"] == "general" else "open_plan"
    return _t(f"rectification.next.{status}", language)


def _mail(key: str, kind: str, address: Address | Sequence[Address], subject: str, body: Body,
          language: str) -> OutgoingMail:
    body.paragraph(_t("rectification.mail.footer", language))
    addresses = (address,) if isinstance(address, Address) else tuple(address)
    return OutgoingMail(dedupe_key=key, kind=kind, recipients=addresses, subject=subject, body_text=body.text(),
                        body_html=body.html())


def _more(body: Body, total: int, shown: int, language: str) -> None:
    if total > shown:
        body.paragraph(_t("rectification.progress.more", language, count=total - shown))


class Writer:
    """Writes one tracking run's messages; each finding's title is rendered once per language.

    With `web` (the settings whose OPSAUDIT_WEB_URL starts every link), each finding named links to
    its page, where the reader acts on it."""

    def __init__(self, directory: Directory, zone: tzinfo, majors: Mapping[str, MajorHandling],
                 web: Settings | None = None) -> None:
        self.directory, self.zone, self.majors, self.web = directory, zone, majors, web
        self._titles: dict[tuple[str, str], str] = {}

    def title(self, finding: RowMapping, language: str) -> str:
        """The finding's title with what it is about and its period, so that the same rule failed by
        the same department in two months reads as two findings: 客户满意度未达标（CS1，2026年10月）."""
        from opsaudit.i18n import entity_label
        from opsaudit.store.finding_views import finding_text

        key = (finding["id"], language)
        if key not in self._titles:
            self._titles[key] = _t("rectification.mail.finding", language, name=finding_text(finding, language)[0],
                                   id=entity_label(finding, language), period=finding["period"])
        return self._titles[key]

    def named(self, finding: RowMapping, language: str) -> Cell:
        """The finding's title, leading to its page when the mail carries links."""
        title = self.title(finding, language)
        return Link(title, finding_url(self.web, finding["id"])) if self.web is not None else title

    def person(self, staff_id: str | None, language: str) -> str:
        return self.directory.person_label(staff_id, language) or "—"

    def subject(self, kind: str, steps: Sequence[Step], language: str) -> str:
        count = len({step.finding["id"] for step in steps})
        if count == 1:
            return _t(f"rectification.mail.{kind}.subject_one", language, title=self.title(steps[0].finding, language))
        return _t(f"rectification.mail.{kind}.subject_many", language, count=count)

    def reminder(self, steps: Sequence[Step], address: Address, language: str, key: str) -> OutgoingMail:
        """One owner's reminders of a run: each finding, the deadline near, what to do next."""
        header = [_t("field.title", language), _t("field.severity", language), _t("field.status", language),
                  _t("rectification.column.deadline", language), _t("rectification.column.days_left", language),
                  _t("rectification.column.next", language)]
        rows = []
        for step in steps[:MAIL_ROWS]:
            finding = step.finding
            deadline = _t("field.plan_due_at" if step.kind == "remind_plan" else "field.due_at", language)
            left = (_t("rectification.mail.due_today", language) if step.days == 0
                    else _t("rectification.mail.days", language, days=step.days))
            next_step = (_t("rectification.next.open_plan", language) if step.kind == "remind_plan"
                         else _next_step(finding, language))
            rows.append([self.named(finding, language), _t(f"enum.severity.{finding['severity']}", language),
                         _t(f"enum.finding_status.{finding['status']}", language),
                         f"{deadline} {_date(step.deadline, self.zone, language)}", left, next_step])
        body = Body(language).paragraph(_t("rectification.mail.reminder.intro", language,
                                           name=address.name or address.email))
        body.table(header, rows)
        _more(body, len(steps), len(rows), language)
        self.major_section(body, [step.finding for step in steps], language)
        return _mail(key, "notice", address, self.subject("reminder", steps, language), body, language)

    def escalation(self, steps: Sequence[Step], address: Address, language: str, key: str) -> OutgoingMail:
        """One person's escalations of a run: each overdue finding, whose it is, how late, who is told."""
        header = [_t("field.title", language), _t("field.department", language), _t("field.owner", language),
                  _t("field.severity", language), _t("field.status", language), _t("field.due_at", language),
                  _t("rectification.column.days_overdue", language), _t("rectification.column.level", language)]
        levels: dict[str, list[Step]] = {}
        for step in steps:  # a person told at several levels of one finding reads it once
            levels.setdefault(step.finding["id"], []).append(step)
        rows = []
        for told in list(levels.values())[:MAIL_ROWS]:
            finding = told[0].finding
            rows.append([self.named(finding, language),
                         self.directory.department_label(finding["department_id"], language),
                         self.person(finding["owner_id"], language),
                         _t(f"enum.severity.{finding['severity']}", language),
                         _t(f"enum.finding_status.{finding['status']}", language),
                         _date(told[0].deadline, self.zone, language),
                         _t("rectification.mail.days", language, days=told[0].days),
                         _t("format.list_separator", language).join(
                             _t(f"rectification.level.{step.level}", language) for step in told)])
        owner = all(step.finding["owner_id"] == address.staff_id for step in steps)
        body = Body(language).paragraph(_t("rectification.mail.escalation.intro_owner" if owner
                                           else "rectification.mail.escalation.intro", language,
                                           name=address.name or address.email))
        body.table(header, rows)
        _more(body, len(levels), len(rows), language)
        self.major_section(body, [step.finding for step in steps], language)
        return _mail(key, "alert", address, self.subject("escalation", steps, language), body, language)

    def progress(self, report: Progress, addresses: Sequence[Address], language: str, key: str) -> OutgoingMail:
        """The weekly progress report: counts by severity, the longest overdue, what falls due, and
        every major finding not closed with its special meeting and task force."""
        from opsaudit.i18n import format_value

        severities = ("major", "important", "general")
        header = ["", *(_t(f"enum.severity.{s}", language) for s in severities),
                  _t("rectification.progress.total", language)]
        counts = [[_t(f"rectification.progress.row.{name}", language),
                   *(format_value(by_severity[s], "count", language) for s in severities),
                   format_value(sum(by_severity.values()), "count", language)]
                  for name, by_severity in report.counts.items()]
        body = Body(language).paragraph(_t("rectification.progress.intro", language,
                                           now=report.now.astimezone(self.zone)))
        body.table(header, counts, compact=True)
        for name, rows in (("overdue", report.overdue), ("due_soon", report.due_soon)):
            self.finding_list(body, name, rows, report, language)
        self.major_section(body, report.majors, language, always=True)
        subject = _t("rectification.progress.subject", language, week=report.week)
        return _mail(key, "report", addresses, subject, body, language)

    def finding_list(self, body: Body, name: str, rows: Sequence[RowMapping], report: Progress,
                     language: str) -> None:
        body.heading(_t(f"rectification.progress.{name}_title", language))
        if not rows:
            body.paragraph(_t("rectification.progress.none", language))
            return
        header = [_t("field.title", language), _t("field.department", language), _t("field.owner", language),
                  _t("field.severity", language), _t("field.due_at", language),
                  _t("rectification.column.level", language)]
        body.table(header, [[self.named(row, language), self.directory.department_label(row["department_id"], language),
                             self.person(row["owner_id"], language),
                             _t(f"enum.severity.{row['severity']}", language),
                             _date(row["due_at"], self.zone, language),
                             _t(f"rectification.level.{report.escalation[row['id']]}", language)
                             if row["id"] in report.escalation else "—"] for row in rows])
        _more(body, sum(report.counts[name].values()), len(rows), language)

    def major_section(self, body: Body, rows: Sequence[RowMapping], language: str, *, always: bool = False) -> None:
        """The special meeting and the task force of each major finding among `rows`."""
        major = list({row["id"]: row for row in rows if row["severity"] == "major"}.values())
        if not major and not always:
            return
        body.heading(_t("rectification.major.title", language))
        if not major:
            body.paragraph(_t("rectification.progress.none", language))
            return
        header = [_t("field.title", language), _t("field.owner", language), _t("field.status", language),
                  _t("rectification.column.meeting", language), _t("rectification.column.task_force", language)]
        table = []
        for row in major:
            handling = self.majors.get(row["id"])
            meeting = (_t("rectification.major.meeting", language, date=handling.meeting_on)
                       if handling and handling.meeting_on else _t("rectification.major.no_meeting", language))
            team = (_t("rectification.major.task_force", language, lead=self.person(handling.task_force_lead, language),
                       members=[self.person(m, language) for m in handling.task_force_members])
                    if handling and handling.task_force_lead else _t("rectification.major.no_task_force", language))
            table.append([self.named(row, language), self.person(row["owner_id"], language),
                          _t(f"enum.finding_status.{row['status']}", language), meeting, team])
        body.table(header, table)
