"""What the demo plants: one record per problem an audit must find."""

from __future__ import annotations

from dataclasses import dataclass

from opsaudit.demo.org import CS_DEPARTMENTS
from opsaudit.demo.tickets import TicketCast, TicketStats
from opsaudit.demo.timeline import Timeline


@dataclass(frozen=True)
class PlantedProblem:
    """A problem planted in the demo data, as the audit of `period` must report it.

    entity_id follows the finding JSON: a plan target is "plan_id/metric", a reported metric
    "report_id/metric/department_id" ("company" for the whole company), a column "table.column".
    """

    rule_id: str
    entity_type: str
    entity_id: str
    period: str
    note: str


def percent(numerator: float, denominator: float) -> str:
    """A share for a note, e.g. '81.3% (412/507)'."""
    return f"{numerator / denominator:.1%} ({numerator:g}/{denominator:g})" if denominator else "n/a (0/0)"


# The default targets and minimum populations of audit-rules.md, to tell whether a planted
# customer-service problem is strong and large enough to be found.
MIN_POPULATION = 20
MIN_REVIEWS = 3
_DEPARTMENT_RATES = (  # rule, department, numerator, denominator, target
    ("cs.satisfaction_rate", "CS1", "satisfied", "rated", 0.90),
    ("cs.complaint_satisfaction_rate", "CS3", "complaint_satisfied", "complaint_rated", 0.95),
    ("cs.handling_rate", "CS3", "handled", "handling_due", 1.0),
    ("cs.revisit_rate", "CS1", "revisited", "revisit_due", 1.0),
    ("cs.first_response_rate", "CS2", "frr_ok", "opened", 0.95),
)


def customer_service(timeline: Timeline, cast: TicketCast, stats: TicketStats) -> list[PlantedProblem]:
    """The planted customer-service problems that the generated tickets really show, by the
    rules' formulas: department rates in the last complete week and month, agent rates and QA
    in the month. A department rate is listed for each period where it misses its target."""
    out = []
    for which, period in (("week", timeline.week), ("month", timeline.month)):
        for rule, dept, num, den, target in _DEPARTMENT_RATES:
            counts = stats.window(which, dept)
            if counts[den] >= MIN_POPULATION and counts[num] < target * counts[den]:
                out.append(PlantedProblem(rule, "department", dept, period.label,
                                          f"{percent(counts[num], counts[den])}, target {target:.0%}"))
            # The whole company's result of the rule is judged too (audit-rules §3): the planted
            # department, and the small misses of healthy ones, can take it below its target.
            company = stats.company_window(which)
            if company[den] >= MIN_POPULATION and company[num] < target * company[den]:
                out.append(PlantedProblem(rule, "company", "company", period.label,
                                          f"company {percent(company[num], company[den])}, target {target:.0%}"))
    month = timeline.month.label
    for agents, num, den, rule in ((cast.low_satisfaction, "satisfied", "rated", "cs.satisfaction_rate"),
                                   (cast.slow_response, "frr_ok", "opened", "cs.first_response_rate")):
        for agent in agents:
            counts = stats.agent(agent)
            target = 0.90 if rule == "cs.satisfaction_rate" else 0.95
            if counts[den] >= MIN_POPULATION and counts[num] < target * counts[den]:
                out.append(PlantedProblem(rule, "agent", agent, month,
                                          f"{percent(counts[num], counts[den])}, target {target:.0%}"))
    out.extend(_reopened(timeline, stats))
    out.extend(_qa(timeline, cast, stats))
    return out


def _reopened(timeline: Timeline, stats: TicketStats) -> list[PlantedProblem]:
    """cs.reopen_rate, an upper limit of 5%, in the week and the month, for each department and the
    company whose tickets resolved in the period were reopened more often (CS2's, planted)."""
    out = []
    for which, period in (("week", timeline.week), ("month", timeline.month)):
        windows = [("department", dept, stats.window(which, dept)) for dept in CS_DEPARTMENTS]
        for entity_type, entity_id, counts in [*windows, ("company", "company", stats.company_window(which))]:
            if counts["done"] >= MIN_POPULATION and counts["reopened"] * 20 > counts["done"]:
                out.append(PlantedProblem("cs.reopen_rate", entity_type, entity_id, period.label,
                                          f"{percent(counts['reopened'], counts['done'])} reopened, limit 5%"))
    return out


def _qa(timeline: Timeline, cast: TicketCast, stats: TicketStats) -> list[PlantedProblem]:
    """QA problems in the month, counting a review in it by either its ticket's opening or its
    own date, since both readings of "reviews in P" must find them."""
    m = timeline.month
    reviews = list(zip(stats.qa_rows, stats.qa_tickets, strict=True))
    readings = ([(row, facts) for row, facts in reviews if m.contains(facts[2])],
                [(row, facts) for row, facts in reviews if m.contains(row["reviewed_at"])])
    out = []
    for rule, column, low in (("cs.qa_attitude", "attitude_score", 48), ("cs.qa_resolution", "resolution_score", 52)):
        scores = [[row[column] for row, (agent, _, _) in reading if agent == cast.poor_attitude]
                  for reading in readings]
        if all(len(s) >= MIN_REVIEWS and sum(s) / len(s) < 80 for s in scores):
            means = " / ".join(f"{sum(s) / len(s):.1f} over {len(s)}" for s in scores)
            out.append(PlantedProblem(rule, "agent", cast.poor_attitude, m.label,
                                      f"mean QA {column} {means} reviews (by ticket / by review date), target 80"))
        if stats.low_review_ticket is not None:
            out.append(PlantedProblem(rule, "ticket", stats.low_review_ticket, m.label,
                                      f"QA {column} {low}, below 60"))
    for entity_type, entity_id, departments in (("department", "CS2", {"CS2"}), ("company", "company", None)):
        shares = [[row["compliant"] for row, (_, dept, _) in reading if departments is None or dept in departments]
                  for reading in readings]
        if all(len(s) >= MIN_POPULATION and sum(s) < 0.95 * len(s) for s in shares):
            out.append(PlantedProblem("cs.qa_compliance", entity_type, entity_id, m.label,
                                      f"compliant reviews {percent(sum(shares[0]), len(shares[0]))} by ticket, "
                                      f"{percent(sum(shares[1]), len(shares[1]))} by review date, target 95%"))
    return out


def ticket_defects(timeline: Timeline, stats: TicketStats) -> list[PlantedProblem]:
    """The planted data-quality defects in tickets, judged by the quarter's data audit."""
    rules = {"tickets.satisfaction": ("dq.range", "satisfaction 7, outside 1..5"),
             "tickets.channel": ("dq.in_set", "channel 'fax', not a contract channel"),
             "tickets.closed_at": ("dq.time_order", "closed two hours before it was opened")}
    return [PlantedProblem(rule, "table_column", column, timeline.quarter.label,
                           f"{note}: {', '.join(stats.defects[column])}")
            for column, (rule, note) in rules.items() if stats.defects.get(column)]
