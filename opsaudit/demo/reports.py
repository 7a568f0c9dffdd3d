"""Analysis reports and the figures they state, re-computed exactly from the generated rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from opsaudit.demo.org import CS_DEPARTMENTS, Org
from opsaudit.demo.planted import PlantedProblem
from opsaudit.demo.tickets import TicketStats
from opsaudit.demo.timeline import Timeline
from opsaudit.demo.work import task_counts
from opsaudit.periods import Period

_METHODS = ("描述统计、同比环比分析", "趋势分析、帕累托分析", "分组对比、根因分析（鱼骨图）", "描述统计、回归分析")
_RECOMMENDATIONS = ("加强高峰时段排班，缩短首次响应时间", "针对投诉集中问题开展专项培训",
                    "优化任务拆解与排期，减少延期", "完善数据录入校验，提升统计准确性")


@dataclass
class Reports:
    analysis_reports: list[dict] = field(default_factory=list)
    reported_metrics: list[dict] = field(default_factory=list)
    planted: list[PlantedProblem] = field(default_factory=list)


def report_id(department_id: str, period: Period) -> str:
    return f"RPT-{department_id}-{period.label}"


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


class ReportBuilder:
    """Monthly and quarterly reports of every working department over the complete periods."""

    def __init__(self, rng: np.random.Generator, timeline: Timeline, org: Org, stats: TicketStats,
                 tasks: list[dict]) -> None:
        self.rng, self.t, self.org, self.stats, self.tasks = rng, timeline, org, stats, tasks
        self.out = Reports()

    def build(self) -> Reports:
        # Planted: RND, which reports monthly, never registered the report on Q's second month,
        # due on the 5th of its third month.
        never_made = ("monthly", self.t.quarter_month(1).label, "RND")
        for kind, period_kind, days in (("monthly", "month", 4), ("quarterly", "quarter", 9)):
            for period in self.t.complete(period_kind):
                for dept in ("OPS", *CS_DEPARTMENTS, "SAL", "RND", "FIN"):
                    if (kind, period.label, dept) != never_made:
                        self._report(kind, period, dept, period.end + timedelta(days=days, hours=18))
        kind, label, dept = never_made
        self.out.planted.append(PlantedProblem("data.report_missing", "deliverable", f"{dept}/{kind}/{label}",
                                               self.t.quarter.label, "a monthly report never registered"))
        self._plant()
        return self.out

    def _author(self, dept: str) -> str:
        return (self.org.members(dept, "supervisor") or self.org.members(dept, "specialist"))[0]

    def _report(self, kind: str, period: Period, dept: str, due: datetime) -> None:
        rng = self.rng
        submitted = (due - timedelta(days=float(rng.uniform(0.3, 3)))).replace(microsecond=0)
        methods = _METHODS[int(rng.integers(len(_METHODS)))]
        advice = _RECOMMENDATIONS[int(rng.integers(len(_RECOMMENDATIONS)))]
        if submitted > self.t.as_of:
            submitted = None
        reviewed = submitted is not None and submitted <= self.t.as_of - timedelta(days=2)
        self.out.analysis_reports.append({
            "report_id": report_id(dept, period), "department_id": dept, "author_id": self._author(dept),
            "kind": kind, "period": period.label, "due_at": due, "submitted_at": submitted,
            "methods": methods, "recommendations": advice,
            "reviewed_by": self.org.head(dept) if reviewed else None})
        if submitted is not None:
            self._metrics(report_id(dept, period), period, None if dept == "OPS" else dept)

    def _metrics(self, rid: str, period: Period, dept: str | None) -> None:
        """What the report states: the company's six figures for OPS, a CS department's own ticket
        and task figures, the task figures of the others."""
        values: dict[str, float | None] = {}
        if dept is None or dept in CS_DEPARTMENTS:
            c = self.stats.period_counts(period, dept)
            values.update(ticket_count=c["opened"], complaint_count=c["complaints"],
                          satisfaction_rate=_rate(c["satisfied"], c["rated"]),
                          first_response_rate=_rate(c["frr_ok"], c["opened"]))
        count, on_time = task_counts(self.tasks, period, dept)
        values.update(task_count=count, task_on_time_rate=_rate(on_time, count))
        for metric, value in values.items():
            if value is not None:
                self.out.reported_metrics.append({"report_id": rid, "metric": metric, "department_id": dept,
                                                  "period": period.label, "value": float(value)})

    def _find(self, rid: str) -> dict:
        return next(r for r in self.out.analysis_reports if r["report_id"] == rid)

    def _stated(self, rid: str, metric: str) -> dict:
        return next(m for m in self.out.reported_metrics if m["report_id"] == rid and m["metric"] == metric)

    def _plant(self) -> None:
        """The data-analysis problems, in reports due or submitted in the previous complete quarter."""
        q = self.t.quarter
        m1, m2 = self.t.quarter_month(0), self.t.quarter_month(1)
        planted = self.out.planted

        late = self._find(report_id("CS3", m1))
        late["submitted_at"] = late["due_at"] + timedelta(days=20, hours=1)
        planted.append(PlantedProblem("data.report_late", "report", late["report_id"], q.label,
                                      "monthly report submitted 20 days after its deadline"))
        bare = self._find(report_id("FIN", m1))
        bare["methods"] = None
        planted.append(PlantedProblem("data.report_incomplete", "report", bare["report_id"], q.label,
                                      "report without analysis methods"))
        unread = self._find(report_id("SAL", m2))
        unread["reviewed_by"] = None
        planted.append(PlantedProblem("data.report_unreviewed", "report", unread["report_id"], q.label,
                                      "report submitted but never reviewed"))

        count = self._stated(report_id("CS2", m1), "ticket_count")
        true_count = count["value"]
        count["value"] = float(round(true_count * 1.15))
        planted.append(PlantedProblem(
            "data.metric_mismatch", "reported_metric", f"{count['report_id']}/ticket_count/CS2", q.label,
            f"states {count['value']:g} tickets, the data has {true_count:g} (+15%)"))
        rate = self._stated(report_id("OPS", m2), "satisfaction_rate")
        true_rate = rate["value"]
        rate["value"] = round(true_rate + (0.03 if true_rate <= 0.965 else -0.03), 4)
        planted.append(PlantedProblem(
            "data.metric_mismatch", "reported_metric", f"{rate['report_id']}/satisfaction_rate/company", q.label,
            f"states company satisfaction {rate['value']:.2%}, the data gives {true_rate:.2%}"))


def build_reports(rng: np.random.Generator, timeline: Timeline, org: Org, stats: TicketStats,
                  tasks: list[dict]) -> Reports:
    """Every report with its stated figures, and the planted data-analysis problems."""
    return ReportBuilder(rng, timeline, org, stats, tasks).build()
