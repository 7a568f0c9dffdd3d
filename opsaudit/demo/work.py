"""Plans with their targets, sign-offs and adjustments, and the tasks that decompose them.

Everything is healthy by construction (submitted before the deadline, approved by the right role
within days, targets a few percent above the baseline, tasks on time or at most three days late
within their month), then the planted planning problems are applied to the previous complete
quarter and the execution problems to the previous complete month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from opsaudit import periods
from opsaudit.demo.org import DEPARTMENT_NAMES, WORKING_DEPARTMENTS, Org
from opsaudit.demo.planted import MIN_POPULATION, PlantedProblem, percent
from opsaudit.demo.timeline import Timeline
from opsaudit.periods import Period, periods_ending_in

# Per department: (metric, unit, monthly level, higher_is_better, additive over months). A company
# names its targets in its own words, as its plans write them.
_METRICS: dict[str, tuple[tuple[str, str, float, bool, bool], ...]] = {
    "OPS": (("完成稽查次数", "次", 12, True, True), ("不定期抽查次数", "次", 4, True, True),
            ("整改关闭问题数", "项", 18, True, True), ("流程文件数", "份", 6, True, True),
            ("培训场次", "场", 3, True, True), ("平均整改天数", "天", 14, False, False)),
    "CS1": (("人均接听量", "件", 320, True, False), ("平均处理时长", "分钟", 7.5, False, False),
            ("培训时长", "小时", 40, True, True), ("知识库文章数", "篇", 12, True, True),
            ("质检平均分", "分", 86, True, False), ("辅导场次", "场", 6, True, True)),
    "CS2": (("人均在线接待量", "件", 300, True, False), ("平均回复时长", "分钟", 9, False, False),
            ("培训时长", "小时", 36, True, True), ("知识库文章数", "篇", 15, True, True),
            ("质检平均分", "分", 86, True, False), ("自助服务占比", "%", 35, True, False)),
    "CS3": (("上门服务完成数", "次", 850, True, True), ("平均在途时长", "分钟", 42, False, False),
            ("培训时长", "小时", 30, True, True), ("首次上门解决率", "%", 82, True, False),
            ("质检平均分", "分", 85, True, False), ("备件周转次数", "次", 3.2, True, False)),
    "SAL": (("新签合同数", "份", 40, True, True), ("销售收入", "万元", 620, True, True),
            ("客户拜访次数", "次", 180, True, True), ("新增客户数", "家", 25, True, True),
            ("续约率", "%", 78, True, False), ("报价单数", "份", 90, True, True)),
    "RND": (("交付功能数", "项", 14, True, True), ("关闭缺陷数", "个", 120, True, True),
            ("版本发布次数", "次", 3, True, True), ("专利申请数", "项", 1.5, True, True),
            ("测试覆盖率", "%", 71, True, False), ("生产事故次数", "次", 4, False, True)),
    "FIN": (("月结天数", "天", 5, False, False), ("发票处理量", "张", 1400, True, True),
            ("对账科目数", "个", 60, True, True), ("付款差错率", "‰", 1.2, False, False),
            ("逾期应收账款", "万元", 180, False, False), ("审计整改完成项数", "项", 10, True, True)),
}
# Collaborating departments that sign annual and quarterly plans: (department, required).
_SIGNOFFS: dict[str, tuple[tuple[str, bool], ...]] = {
    "OPS": (("FIN", True), ("CS1", False)), "CS1": (("SAL", True), ("FIN", True)),
    "CS2": (("SAL", True), ("RND", False)), "CS3": (("FIN", True), ("SAL", True)),
    "SAL": (("FIN", True), ("RND", True)), "RND": (("SAL", True), ("FIN", True)), "FIN": (("OPS", True),),
}
_GOALS = {
    "OPS": "以稽查促规范，运营问题闭环整改", "CS1": "提升客户满意度与服务口碑", "CS2": "提升客户满意度与服务口碑",
    "CS3": "提升现场服务一次解决率", "SAL": "扩大市场份额，营收增长20%", "RND": "产品质量与交付效率双提升",
    "FIN": "强化成本管控与资金安全",
}
_TOPICS = {
    "OPS": ("运营稽查", "整改跟踪", "流程文件修订", "运营周报", "稽查培训", "指标复盘"),
    "CS1": ("热线话术更新", "新人带教", "知识库维护", "投诉复盘", "排班优化", "质检辅导"),
    "CS2": ("在线客服知识库", "机器人语料优化", "工单分类梳理", "质检辅导", "回访脚本", "服务培训"),
    "CS3": ("上门服务排程", "备件盘点", "工程师培训", "服务网点巡检", "安装规范更新", "质检辅导"),
    "SAL": ("重点客户拜访", "渠道政策梳理", "投标文件准备", "销售培训", "合同续签", "市场活动"),
    "RND": ("版本迭代开发", "缺陷修复", "性能优化", "自动化测试", "技术评审", "专利申报"),
    "FIN": ("月度结账", "发票核对", "预算执行分析", "应收账款催收", "费用报销审核", "内控自查"),
}
_VERBS = ("完成", "推进", "组织", "落实", "开展", "整理")
_ADJUST_REASONS = ("业务量变化，调整月度目标", "人员变动，重新分配任务", "客户需求变更，调整交付节奏",
                   "配合公司专项活动，调整计划安排")
_PRIORITIES = (("low", 0.15), ("normal", 0.55), ("high", 0.25), ("critical", 0.05))


@dataclass
class Work:
    plans: list[dict] = field(default_factory=list)
    plan_targets: list[dict] = field(default_factory=list)
    plan_signoffs: list[dict] = field(default_factory=list)
    plan_adjustments: list[dict] = field(default_factory=list)
    tasks: list[dict] = field(default_factory=list)
    planted: list[PlantedProblem] = field(default_factory=list)


def plan_id(department_id: str, period: Period) -> str:
    return f"PLN-{department_id}-{period.label}"


def _period_text(period: Period) -> str:
    """2026年度, 2026年第4季度, 2026年11月."""
    start = period.start
    if period.kind == "year":
        return f"{start.year}年度"
    if period.kind == "quarter":
        return f"{start.year}年第{(start.month - 1) // 3 + 1}季度"
    return f"{start.year}年{start.month}月"


def _at(day: datetime, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


class WorkBuilder:
    """Builds the plans and tasks of every working department over the timeline."""

    def __init__(self, rng: np.random.Generator, timeline: Timeline, org: Org) -> None:
        self.rng, self.t, self.org = rng, timeline, org
        self.work = Work()
        self.plans: dict[str, dict] = {}
        self.executives = org.members("HQ", "executive")
        # Planted task records waiting for their task's id: (index in work.planted, task row).
        self._pending: list[tuple[int, dict]] = []

    def build(self) -> Work:
        self._plans()
        self._plant_planning()
        self._tasks()
        self._plant_execution()
        self._adjustments()
        self._number_tasks()
        self._plant_company_results()
        return self.work

    # --- plans -------------------------------------------------------------------------
    def _plan_periods(self) -> list[tuple[str, Period]]:
        """Annual plans for this year and next, quarterly and monthly ones from the start of the
        data to the period after as_of's (whose plan is due at the end of the current one)."""
        out: list[tuple[str, Period]] = [("annual", periods.year(self.t.as_of.year)),
                                         ("annual", periods.year(self.t.as_of.year + 1))]
        for level, kind in (("quarterly", "quarter"), ("monthly", "month")):
            period = periods.containing(kind, self.t.start)  # type: ignore[arg-type]
            last = periods.shift(periods.containing(kind, self.t.as_of), 1)  # type: ignore[arg-type]
            while period.start <= last.start:
                out.append((level, period))
                period = periods.shift(period, 1)
        return out

    def _random_time(self, base: datetime, low_days: float, high_days: float) -> datetime:
        return (base + timedelta(days=float(self.rng.uniform(low_days, high_days)))).replace(microsecond=0)

    def _plans(self) -> None:
        # Planted: CS1 never made its plan for the quarter after Q, due on Q's last day.
        never_made = ("quarterly", self.t.next_quarter.label, "CS1")
        for level, period in self._plan_periods():
            for dept in WORKING_DEPARTMENTS:
                if (level, period.label, dept) != never_made:
                    self._plan(level, period, dept)
        level, label, dept = never_made
        self._plant("plan.missing", "deliverable", f"{dept}/{level}/{label}", self.t.quarter,
                    "the quarterly plan due on the quarter's last day was never made")

    def _plan(self, level: str, period: Period, dept: str) -> None:
        head = self.org.head(dept)
        due = period.start - timedelta(seconds=1)
        submitted = self._random_time(due, -7, -1)
        approved = self._random_time(submitted, 0.5, 3)
        if level == "monthly":
            owner = (self.org.members(dept, "deputy_manager") or self.org.members(dept, "supervisor")
                     or self.org.members(dept, "specialist"))[0]
            approver = head
        else:
            owner, approver = head, self.executives[0 if level == "annual" else 1]
        plan = {
            "plan_id": plan_id(dept, period), "level": level, "period": period.label, "department_id": dept,
            "owner_id": owner, "title": f"{DEPARTMENT_NAMES[dept]}{_period_text(period)}工作计划",
            "due_at": due, "submitted_at": submitted, "approved_by": approver, "approved_at": approved,
            "status": "approved", "strategic_goal": _GOALS[dept],
            "market_research": None if level == "monthly" else f"MR-{period.label}-{dept} 市场与需求调研报告",
        }
        self._settle(plan, period)
        self.plans[plan["plan_id"]] = plan
        self.work.plans.append(plan)
        self._targets(plan, level, period, dept)
        if level != "monthly":
            for other, required in _SIGNOFFS[dept]:
                signed = plan["submitted_at"] is not None
                self.work.plan_signoffs.append({
                    "plan_id": plan["plan_id"], "department_id": other, "required": required,
                    "signed_by": self.org.head(other) if signed else None,
                    "signed_at": self._random_time(plan["submitted_at"], -2, -0.2) if signed else None})

    def _settle(self, plan: dict, period: Period) -> None:
        """Status as of as_of: nothing after it has happened yet; a plan over its period is closed."""
        as_of = self.t.as_of
        if plan["submitted_at"] is not None and plan["submitted_at"] > as_of:
            plan.update(submitted_at=None, approved_by=None, approved_at=None, status="draft")
        elif plan["approved_at"] is None or plan["approved_at"] > as_of:
            plan.update(approved_by=None, approved_at=None, status="submitted")
        else:
            plan["status"] = "closed" if period.end <= as_of else "approved"

    def _targets(self, plan: dict, level: str, period: Period, dept: str) -> None:
        """Six targets a few percent better than the baseline; actuals once the period is over."""
        months = {"annual": 12, "quarterly": 3, "monthly": 1}[level]
        age = (period.start.year - self.t.start.year) * 12 + period.start.month - self.t.start.month
        ended = plan["status"] == "closed"
        # Healthy departments miss one target in the plan of each quarter's first month.
        miss = 1 if ended and level == "monthly" and period.start.month % 3 == 1 else 0
        missed = set(self.rng.choice(6, size=miss, replace=False).tolist())
        for i, (metric, unit, level_value, higher, additive) in enumerate(_METRICS[dept]):
            sign = 1 if higher else -1
            trend = level_value * (months if additive else 1) * (1 + 0.01 * sign * age)
            baseline = round(trend * float(self.rng.uniform(0.97, 1.03)), 1)
            target = round(baseline * (1 + sign * float(self.rng.uniform(0.02, 0.08))), 1)
            self.work.plan_targets.append({
                "plan_id": plan["plan_id"], "metric": metric, "unit": unit, "baseline": baseline,
                "target": target, "actual": None, "higher_is_better": higher})
            if ended:
                self._set_actual(self.work.plan_targets[-1], reached=i not in missed)

    def _set_actual(self, row: dict, *, reached: bool) -> None:
        """An actual at or beyond the target, or between the baseline and the target."""
        baseline, target, sign = row["baseline"], row["target"], 1 if row["higher_is_better"] else -1
        if reached:
            actual = round(target * (1 + sign * float(self.rng.uniform(0, 0.04))), 1)
            actual = max(actual, target) if sign > 0 else min(actual, target)
        else:
            actual = round(baseline + (target - baseline) * float(self.rng.uniform(0.1, 0.7)), 1)
            if sign * (actual - target) >= 0:
                actual = round(target - sign * 0.1, 1)
        row["actual"] = actual

    def _plant_planning(self) -> None:
        """The planning problems, all in the previous complete quarter Q (plans for Q's second and
        third month and for the next quarter are due, submitted and approved in Q)."""
        q, nq = self.t.quarter, self.t.next_quarter
        m1, m2, m3 = (self.t.quarter_month(i) for i in range(3))
        deputy = self.org.members("OPS", "deputy_manager")[0]

        late = self.plans[plan_id("CS2", m2)]
        late["submitted_at"] = _at(late["due_at"] + timedelta(days=6), 10)
        late["approved_at"] = _at(late["submitted_at"] + timedelta(days=1), 16)
        self._plant("plan.late_submission", "plan", late["plan_id"], q,
                    "monthly plan submitted 5 days after its deadline")

        wrong = self.plans[plan_id("OPS", nq)]
        wrong.update(submitted_at=_at(q.end - timedelta(days=9), 11),
                     approved_at=_at(q.end - timedelta(days=6), 15), approved_by=deputy, status="approved")
        self._sign(wrong)
        self._plant("plan.unapproved", "plan", wrong["plan_id"], q,
                    f"quarterly plan approved by the deputy manager {deputy}, not an executive or manager")

        pending = self.plans[plan_id("FIN", m3)]
        pending.update(approved_by=None, approved_at=None, status="submitted")
        self._plant("plan.unapproved", "plan", pending["plan_id"], q,
                    "monthly plan submitted about a month before the quarter ended, never approved")

        self._plant("plan.not_decomposed", "plan", plan_id("SAL", m2), q,
                    "approved monthly plan with no task (the month's tasks were logged without it)")

        sales = plan_id("SAL", nq)
        contracts = self._target(sales, "新签合同数")
        contracts["target"] = round(contracts["baseline"] * 1.8, 1)
        self._plant("plan.target_unreasonable", "plan_target", f"{sales}/新签合同数", q,
                    f"target {contracts['target']:g} is +80% over the baseline {contracts['baseline']:g}")
        rnd = plan_id("RND", nq)
        self._target(rnd, "专利申请数")["baseline"] = None
        self._plant("plan.target_unreasonable", "plan_target", f"{rnd}/专利申请数", q,
                    "target without a baseline")

        self.plans[rnd]["market_research"] = None
        self._plant("plan.missing_market_research", "plan", rnd, q,
                    "quarterly plan submitted without market research")

        unsigned = self.plans[plan_id("CS3", nq)]
        unsigned.update(submitted_at=_at(q.end - timedelta(days=9), 10),
                        approved_at=_at(q.end - timedelta(days=5), 17), status="approved")
        self._sign(unsigned, missing="FIN")
        self._plant("plan.missing_signoff", "plan", unsigned["plan_id"], q,
                    "required finance sign-off missing on an approved quarterly plan")

        for month in (m1, m2):
            sal = plan_id("SAL", month)
            rows = [r for r in self.work.plan_targets if r["plan_id"] == sal]
            for i, row in enumerate(rows):
                self._set_actual(row, reached=i >= 4)
        ended = [r for r in self.work.plan_targets if r["plan_id"].startswith("PLN-SAL-")
                 and r["actual"] is not None and self.plans[r["plan_id"]]["period"] in (m1.label, m2.label,
                                                                                          m3.label, q.label)]
        hit = sum(self._reached(r) for r in ended)
        self._plant("plan.completion_rate", "department", "SAL", q,
                    f"targets reached {percent(hit, len(ended))} of the plans ending in {q.label}")

    def _sign(self, plan: dict, missing: str | None = None) -> None:
        """Sign-offs of a plan whose dates were moved: the day before submission, but `missing`."""
        for row in self.work.plan_signoffs:
            if row["plan_id"] == plan["plan_id"]:
                signed = row["department_id"] != missing
                row.update(signed_by=self.org.head(row["department_id"]) if signed else None,
                           signed_at=plan["submitted_at"] - timedelta(hours=20) if signed else None)

    def _target(self, pid: str, metric: str) -> dict:
        return next(r for r in self.work.plan_targets if r["plan_id"] == pid and r["metric"] == metric)

    @staticmethod
    def _reached(row: dict) -> bool:
        return row["actual"] >= row["target"] if row["higher_is_better"] else row["actual"] <= row["target"]

    def _plant(self, rule_id: str, entity_type: str, entity_id: str, period: Period, note: str) -> None:
        self.work.planted.append(PlantedProblem(rule_id, entity_type, entity_id, period.label, note))

    # --- tasks ---------------------------------------------------------------------------
    def _task_months(self) -> list[Period]:
        months = self.t.months()
        current = periods.containing("month", self.t.as_of)
        return months if months[-1] == current else [*months, current]

    def _tasks(self) -> None:
        undecomposed = plan_id("SAL", self.t.quarter_month(1))
        for month in self._task_months():
            for dept in WORKING_DEPARTMENTS:
                pid = plan_id(dept, month)
                planned = int(self.rng.integers(32, 39))
                adhoc = int(self.rng.integers(1, 4))
                rows = [self._task(dept, month, None if pid == undecomposed or i >= planned else pid)
                        for i in range(planned + adhoc)]
                self._spoil(rows, late=2 if (dept, month) == ("RND", self.t.month) else None)
                for row in rows:
                    self._settle_task(row)
                self.work.tasks.extend(rows)

    def _owners(self, dept: str) -> list[str]:
        head = self.org.head(dept)
        return [p.staff_id for p in self.org.people
                if p.department_id == dept and p.active and p.staff_id != head and p.role != "agent"]

    def _task(self, dept: str, month: Period, pid: str | None, *, due: datetime | None = None,
              priority: str | None = None) -> dict:
        """A task planned to finish on time; _settle_task decides what has happened by as_of."""
        rng = self.rng
        days = (month.end - month.start).days
        if due is None:
            due = month.start + timedelta(days=int(rng.integers(0, days)), hours=18)
        planned_start = _at(due - timedelta(days=int(rng.integers(2, 15))), 9)
        started = (planned_start + timedelta(hours=float(rng.uniform(-4, 24)))).replace(microsecond=0)
        finish = started + (due - started) * float(rng.uniform(0.45, 0.98))
        names, weights = zip(*_PRIORITIES, strict=True)
        chosen = str(rng.choice(names, p=weights))
        budget_hours = float(rng.integers(8, 81))
        owners = self._owners(dept)
        return {
            "task_id": None, "plan_id": pid, "department_id": dept,
            "owner_id": owners[int(rng.integers(len(owners)))],
            "title": f"{_VERBS[int(rng.integers(len(_VERBS)))]}{_TOPICS[dept][int(rng.integers(6))]}",
            "priority": priority or chosen, "planned_start": planned_start, "due_at": due,
            "started_at": started, "completed_at": finish.replace(microsecond=0), "status": "done",
            "expected_output": float(rng.integers(5, 200)) if rng.random() < 0.9 else None,
            "actual_output": None, "budget_hours": budget_hours, "actual_hours": None,
            "budget_cost": round(budget_hours * float(rng.uniform(120, 260)) + float(rng.uniform(0, 2000)), -1),
            "actual_cost": None,
        }

    def _spoil(self, rows: list[dict], *, late: int | None) -> None:
        """Cancel one task in about half the months and let one (or `late`) finish up to 70 hours
        late, always within the month and never more than three days late."""
        rng = self.rng
        if rng.random() < 0.5:
            rows[int(rng.integers(len(rows)))]["status"] = "cancelled"
        candidates = [r for r in rows if r["status"] == "done" and r["due_at"].day <= 25]
        count = late if late is not None else int(rng.random() < 0.4)
        for i in rng.choice(len(candidates), size=count, replace=False).tolist():
            row = candidates[i]
            row["completed_at"] = (row["due_at"] + timedelta(hours=float(rng.uniform(2, 70)))).replace(microsecond=0)

    def _settle_task(self, row: dict) -> None:
        """Status and actuals as of as_of; a cancelled task keeps only the hours spent."""
        rng, as_of = self.rng, self.t.as_of
        fraction = float(rng.uniform(0.1, 0.6))
        if row["status"] != "cancelled" and row["completed_at"] <= as_of:
            expected = row["expected_output"]
            if expected is not None:
                row["actual_output"] = expected + math.ceil(expected * float(rng.uniform(0, 0.15)))
            row["actual_hours"] = round(row["budget_hours"] * float(rng.uniform(0.85, 1.05)), 1)
            row["actual_cost"] = round(row["budget_cost"] * float(rng.uniform(0.82, 1.06)), 2)
            return
        row["completed_at"] = None
        if row["started_at"] > as_of:
            row.update(started_at=None, status=row["status"] if row["status"] == "cancelled" else "not_started")
            return
        row["actual_hours"] = round(row["budget_hours"] * fraction, 1)
        if row["status"] != "cancelled":
            row["status"] = "in_progress"

    def _done_in(self, dept: str, period: Period) -> list[dict]:
        return [r for r in self.work.tasks if r["department_id"] == dept and r["status"] == "done"
                and period.contains(r["completed_at"])]

    def _extra(self, dept: str, due: datetime, *, priority: str, title: str, pid: str | None,
               completed: datetime | None) -> dict:
        """A hand-placed task: done at `completed`, or still in progress."""
        month = periods.containing("month", due)
        row = self._task(dept, month, pid, due=due, priority=priority)
        row["title"] = title
        row["started_at"] = min(row["started_at"], (completed or due) - timedelta(days=1))
        # A completion after as_of leaves the task in progress.
        row["completed_at"] = completed if completed is not None else self.t.as_of + timedelta(days=365)
        self._settle_task(row)
        self.work.tasks.append(row)
        return row

    def _plant_execution(self) -> None:
        """The execution problems, all judged on the previous complete month M."""
        m, rng = self.t.month, self.rng
        rnd_plan = plan_id("RND", m)
        overdue = (
            (self._extra("RND", _at(m.start + timedelta(days=7), 18), priority="normal", title="完成接口联调",
                         pid=rnd_plan, completed=_at(m.start + timedelta(days=13), 18)),
             "normal priority, done 6 days late (general)"),
            (self._extra("RND", _at(m.start + timedelta(days=19), 18), priority="high", title="修复支付模块缺陷",
                         pid=rnd_plan, completed=None),
             "high priority, not done at the end of the month (important)"),
            (self._extra("RND", _at(m.start + timedelta(days=2), 18), priority="normal", title="编写发布文档",
                         pid=rnd_plan, completed=None),
             "normal priority, not done, more than 14 days late at the end of the month (important)"),
            (self._extra("RND", _at(m.start - timedelta(days=16), 18), priority="critical",
                         title="升级核心数据库版本", pid=plan_id("RND", periods.shift(m, -1)), completed=None),
             "critical priority, not done, more than 30 days late at the end of the month (major)"),
        )
        for row, note in overdue:
            self._plant_task("exec.overdue_task", row, note)
        due = [r for r in self.work.tasks if r["department_id"] == "RND" and m.contains(r["due_at"])
               and r["status"] != "cancelled"]
        on_time = sum(r["completed_at"] is not None and r["completed_at"] <= r["due_at"] for r in due)
        self._plant("exec.on_time_rate", "department", "RND", m, f"tasks on time {percent(on_time, len(due))}")

        sales = [r for r in self._done_in("SAL", m) if r["expected_output"] is not None]
        for i in rng.choice(len(sales), size=round(0.22 * len(sales)), replace=False).tolist():
            sales[i]["actual_output"] = float(math.floor(sales[i]["expected_output"] * float(rng.uniform(0.5, 0.9))))
        met = sum(r["actual_output"] >= r["expected_output"] for r in sales)
        self._plant("exec.outcome_shortfall", "department", "SAL", m,
                    f"done tasks reaching the expected output {percent(met, len(sales))}")

        for dept, column, low, high, rule in (("CS3", "cost", 1.18, 1.42, "exec.cost_overrun"),
                                              ("FIN", "hours", 1.15, 1.42, "exec.hours_overrun"),
                                              ("CS1", "hours", 0.30, 0.55, "exec.idle_resources")):
            rows = self._done_in(dept, m)
            for row in rows:
                row[f"actual_{column}"] = round(row[f"budget_{column}"] * float(rng.uniform(low, high)), 1)
            ratio = sum(r[f"actual_{column}"] for r in rows) / sum(r[f"budget_{column}"] for r in rows)
            self._plant(rule, "department", dept, m, f"actual/budget {column} of done tasks {ratio:.0%}")

        ops = sorted(self._done_in("OPS", m), key=lambda r: r["due_at"])
        ops[0]["actual_cost"] = round(ops[0]["budget_cost"] * 1.85, 2)
        self._plant_task("exec.cost_overrun", ops[0], "task cost at 185% of budget")
        ops[1]["actual_hours"] = round(ops[1]["budget_hours"] * 1.7, 1)
        self._plant_task("exec.hours_overrun", ops[1], "task hours at 170% of budget")

        unstarted = min(self._done_in("CS2", m), key=lambda r: r["due_at"])
        unstarted["started_at"] = None
        self._plant_task("exec.process_violation", unstarted, "done without a start time")
        ownerless = self._extra("OPS", _at(m.start + timedelta(days=11), 18), priority="normal",
                                title="临时协调跨部门会议", pid=None, completed=_at(m.start + timedelta(days=10), 15))
        ownerless["owner_id"] = None
        self._plant_task("exec.process_violation", ownerless, "ad-hoc task done without an owner")

        dq_start = self.t.dq_window[0]
        ghost = self._extra("OPS", _at(dq_start + timedelta(days=3), 18), priority="normal", title="整理稽查底稿",
                            pid=None, completed=_at(dq_start + timedelta(days=2), 16))
        ghost["owner_id"] = "S999"
        self._plant("dq.reference", "table_column", "tasks.owner_id", self.t.quarter,
                    "one task owned by S999, who is not in staff")
        untitled = self._extra("RND", _at(dq_start + timedelta(days=5), 18), priority="low", title="",
                               pid=None, completed=_at(dq_start + timedelta(days=4), 11))
        untitled["title"] = None
        self._plant("dq.not_null", "table_column", "tasks.title", self.t.quarter,
                    "one task without a title (the demo schema lets tasks.title be null)")

    def _plant_company_results(self) -> None:
        """The whole company's result of each department rule, judged like any other (audit-rules §3):
        listed wherever the generated data, all departments together, misses the target."""
        m, q = self.t.month, self.t.quarter
        due, on_time = task_counts(self.work.tasks, m, None)
        done = [r for r in self.work.tasks if r["status"] == "done" and m.contains(r["completed_at"])]
        expected = [r for r in done if r["expected_output"] is not None]
        met = sum(r["actual_output"] is not None and r["actual_output"] >= r["expected_output"] for r in expected)
        checks = [("exec.on_time_rate", m, due, on_time / due if due else None, 0.95, "at_least"),
                  ("exec.outcome_shortfall", m, len(expected), met / len(expected) if expected else None, 0.90,
                   "at_least")]
        for rule, column, limit, op in (("exec.cost_overrun", "cost", 1.10, "at_most"),
                                        ("exec.hours_overrun", "hours", 1.10, "at_most"),
                                        ("exec.idle_resources", "hours", 0.50, "at_least")):
            spent = [r for r in done if (r[f"budget_{column}"] or 0) > 0 and r[f"actual_{column}"] is not None
                     and r[f"actual_{column}"] >= 0]
            budget = sum(r[f"budget_{column}"] for r in spent)
            checks.append((rule, m, len(spent), sum(r[f"actual_{column}"] for r in spent) / budget if budget
                           else None, limit, op))
        ending = set(periods_ending_in(q))
        targets = [r for r in self.work.plan_targets if r["actual"] is not None
                   and self.plans[r["plan_id"]]["period"] in ending]
        checks.append(("plan.completion_rate", q, len(targets),
                       sum(self._reached(r) for r in targets) / len(targets) if targets else None, 0.90, "at_least"))
        for rule, period, population, observed, target, op in checks:
            minimum = 5 if rule == "plan.completion_rate" else MIN_POPULATION
            missed = observed is not None and (observed < target if op == "at_least" else observed > target)
            if population >= minimum and missed:
                self._plant(rule, "company", "company", period, f"company {observed:.1%} over {population}, "
                                                                f"target {target:.0%}")

    def _plant_task(self, rule_id: str, row: dict, note: str) -> None:
        """Tasks get their ids only at the end; the record is completed in _number_tasks."""
        self.work.planted.append(PlantedProblem(rule_id, "task", "", self.t.month.label, note))
        self._pending.append((len(self.work.planted) - 1, row))

    def _number_tasks(self) -> None:
        """Ids in due order, then the planted task records get theirs."""
        order = sorted(range(len(self.work.tasks)),
                       key=lambda i: (self.work.tasks[i]["due_at"], WORKING_DEPARTMENTS.index(
                           self.work.tasks[i]["department_id"]), i))
        for n, i in enumerate(order, start=1):
            self.work.tasks[i]["task_id"] = f"TSK-{n:05d}"
        for index, row in self._pending:
            problem = self.work.planted[index]
            self.work.planted[index] = PlantedProblem(problem.rule_id, problem.entity_type, row["task_id"],
                                                      problem.period, f"{problem.note}: {row['title']}")

    # --- adjustments ---------------------------------------------------------------------
    def _adjustments(self) -> None:
        """One or two approved adjustments a month, plus the planted ones in Q's second month."""
        rng, rows = self.rng, []
        for month in self.t.months():
            for _ in range(int(rng.integers(1, 3))):
                dept = WORKING_DEPARTMENTS[int(rng.integers(len(WORKING_DEPARTMENTS)))]
                plan = self.plans[plan_id(dept, month)]
                requested = self._random_time(month.start, 8, 18)
                approved = self._random_time(requested, 0.2, 2)
                effective = self._random_time(approved, 0, 1)
                if plan["approved_at"] is None or effective > self.t.as_of or requested < plan["approved_at"]:
                    continue
                rows.append(self._adjustment(plan, requested, approved, effective,
                                             _ADJUST_REASONS[int(rng.integers(len(_ADJUST_REASONS)))]))
        m2 = self.t.quarter_month(1)
        asked = _at(m2.start + timedelta(days=11), 10)
        unapproved = self._adjustment(self.plans[plan_id("CS1", m2)], asked, None, asked + timedelta(days=2),
                                      "回访人手不足，申请下调回访量目标")
        asked = _at(m2.start + timedelta(days=14), 14)
        twice = self._adjustment(self.plans[plan_id("RND", m2)], asked, asked + timedelta(days=1),
                                 asked + timedelta(days=2), "需求变更，调整迭代范围")
        rows += [unapproved, twice]
        rows.sort(key=lambda r: (r["requested_at"], r["plan_id"]))
        for n, row in enumerate(rows, start=1):
            row["adjustment_id"] = f"ADJ-{n:04d}"
        rows.append(dict(twice))  # the same adjustment entered twice
        self.work.plan_adjustments = rows
        q = self.t.quarter
        self._plant("plan.adjustment_unapproved", "adjustment", unapproved["adjustment_id"], q,
                    f"adjustment of {unapproved['plan_id']} put into effect without approval")
        self._plant("dq.unique", "table_column", "plan_adjustments.adjustment_id", q,
                    f"adjustment {twice['adjustment_id']} entered twice (the demo schema has no key there)")

    def _adjustment(self, plan: dict, requested: datetime, approved: datetime | None, effective: datetime,
                    reason: str) -> dict:
        head = self.org.head(plan["department_id"])
        return {"adjustment_id": None, "plan_id": plan["plan_id"], "requested_by": plan["owner_id"],
                "requested_at": requested, "reason": reason, "approved_by": head if approved else None,
                "approved_at": approved, "effective_at": effective}


def build_work(rng: np.random.Generator, timeline: Timeline, org: Org) -> Work:
    """Plans, targets, sign-offs, adjustments and tasks, with the planning and execution plants."""
    return WorkBuilder(rng, timeline, org).build()


def task_counts(tasks: list[dict], period: Period, department_id: str | None) -> tuple[int, int]:
    """Tasks due in `period`, not cancelled, and how many of them were completed by their due time."""
    due = [t for t in tasks if period.contains(t["due_at"]) and t["status"] != "cancelled"
           and (department_id is None or t["department_id"] == department_id)]
    return len(due), sum(t["completed_at"] is not None and t["completed_at"] <= t["due_at"] for t in due)
