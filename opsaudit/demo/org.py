"""The demo company: departments and staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from opsaudit.demo.timeline import Timeline

# (department_id, name, parent_id)
DEPARTMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("HQ", "总经办", None),
    ("OPS", "运营部", "HQ"),
    ("CS1", "客服一部（热线）", "OPS"),
    ("CS2", "客服二部（在线）", "OPS"),
    ("CS3", "客服三部（现场服务）", "OPS"),
    ("SAL", "销售部", "HQ"),
    ("RND", "研发部", "HQ"),
    ("FIN", "财务部", "HQ"),
)
DEPARTMENT_NAMES: dict[str, str] = {d: name for d, name, _ in DEPARTMENTS}
CS_DEPARTMENTS: tuple[str, ...] = ("CS1", "CS2", "CS3")
# The departments that make plans, run tasks and write analysis reports.
WORKING_DEPARTMENTS: tuple[str, ...] = ("OPS", "CS1", "CS2", "CS3", "SAL", "RND", "FIN")

# Who works where, in staff_id order; the first manager of a department is its head.
_ROSTER: tuple[tuple[str, str, int], ...] = (
    ("HQ", "executive", 2), ("HQ", "manager", 1),
    ("OPS", "manager", 1), ("OPS", "deputy_manager", 1), ("OPS", "auditor", 3), ("OPS", "specialist", 1),
    ("CS1", "manager", 1), ("CS1", "supervisor", 2), ("CS1", "agent", 22),
    ("CS2", "manager", 1), ("CS2", "supervisor", 2), ("CS2", "agent", 20),
    ("CS3", "manager", 1), ("CS3", "supervisor", 1), ("CS3", "agent", 16),
    ("SAL", "manager", 1), ("SAL", "specialist", 3),
    ("RND", "manager", 1), ("RND", "specialist", 3),
    ("FIN", "manager", 1), ("FIN", "specialist", 2),
)
# Agents who left during the covered span, per CS department.
_LEAVERS = {"CS1": 2, "CS2": 1, "CS3": 1}

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建文斌宇浩凯晨欣怡"


@dataclass(frozen=True)
class Person:
    staff_id: str
    name: str
    department_id: str
    role: str
    active: bool

    @property
    def email(self) -> str:
        return f"{self.staff_id.lower()}@example.com"


@dataclass(frozen=True)
class Org:
    """The staff list, with each CS agent's share of the work and, for leavers, the day they left."""

    people: tuple[Person, ...]
    agent_weight: dict[str, float]
    left_at: dict[str, datetime]

    def members(self, department_id: str, role: str) -> list[str]:
        return [p.staff_id for p in self.people if p.department_id == department_id and p.role == role]

    def head(self, department_id: str) -> str:
        return self.members(department_id, "manager")[0]

    def agents(self, department_id: str) -> list[str]:
        return self.members(department_id, "agent")

    def stayers(self, department_id: str) -> list[str]:
        """The department's agents still employed at as_of."""
        return [a for a in self.agents(department_id) if a not in self.left_at]

    def department_rows(self) -> list[dict]:
        return [{"department_id": d, "name": name, "parent_id": parent, "head_id": self.head(d)}
                for d, name, parent in DEPARTMENTS]

    def staff_rows(self) -> list[dict]:
        return [{"staff_id": p.staff_id, "name": p.name, "department_id": p.department_id,
                 "role": p.role, "email": p.email, "active": p.active} for p in self.people]


def _name(rng: np.random.Generator) -> str:
    length = 1 + int(rng.random() < 0.7)
    return _SURNAMES[rng.integers(len(_SURNAMES))] + "".join(
        _GIVEN[i] for i in rng.integers(len(_GIVEN), size=length))


def build_org(rng: np.random.Generator, timeline: Timeline) -> Org:
    """The roster with names, agent workloads and leavers, all drawn from rng."""
    roster = [(dept, role) for dept, role, count in _ROSTER for _ in range(count)]
    ids = [f"S{n:03d}" for n in range(1, len(roster) + 1)]
    leavers: dict[str, datetime] = {}
    for dept, count in _LEAVERS.items():
        agents = [sid for sid, (d, role) in zip(ids, roster, strict=True) if d == dept and role == "agent"]
        # They leave at least ten days before the last complete month, so none of its rules sees them.
        span = (timeline.month.start - timedelta(days=10) - timeline.start).days
        for sid in rng.choice(agents, size=count, replace=False).tolist():
            leavers[sid] = timeline.start + timedelta(days=int(rng.integers(15, max(span, 16))))
    people = tuple(Person(sid, _name(rng), dept, role, sid not in leavers)
                   for sid, (dept, role) in zip(ids, roster, strict=True))
    weights = {p.staff_id: float(rng.uniform(0.75, 1.25)) for p in people if p.role == "agent"}
    return Org(people=people, agent_weight=weights, left_at=leavers)
