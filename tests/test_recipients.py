"""Recipients by role from the staff and departments tables and recipients.yaml, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from opsaudit.config.models import Recipient as Configured
from opsaudit.config.models import Recipients, SourceMapping, TableSource
from opsaudit.contract import metadata
from opsaudit.reports.outbox import Address
from opsaudit.reports.recipients import (
    Directory,
    Role,
    alert_recipients,
    circulation_recipients,
    draft_recipients,
    report_recipients,
    resolve,
)
from opsaudit.settings import load_settings
from opsaudit.source import Source
from tests.builders import Dataset


def mail(staff_id: str) -> str:
    return f"{staff_id.lower()}@example.com"


def company() -> Dataset:
    """HQ over OPS (with CS1 and CS2 under it) and SAL; a few people who cannot be mailed."""
    data = Dataset()
    data.department("HQ", head_id="S001")
    data.department("OPS", parent_id="HQ", head_id="S003")
    data.department("CS1", parent_id="OPS", head_id="S010")
    data.department("CS2", parent_id="OPS", head_id=None)
    data.department("SAL", parent_id="HQ", head_id="S020")
    people = [("S001", "HQ", "executive", True), ("S002", "HQ", "executive", True),
              ("S003", "OPS", "manager", True), ("S004", "OPS", "manager", True),
              ("S005", "OPS", "deputy_manager", True), ("S006", "OPS", "auditor", True),
              ("S007", "OPS", "auditor", True), ("S009", "OPS", "manager", False),
              ("S010", "CS1", "manager", True), ("S011", "CS1", "agent", True), ("S012", "CS1", "agent", False),
              ("S020", "SAL", "manager", False), ("S021", "SAL", "specialist", True)]
    without_email = {"S002", "S007"}
    for staff_id, department, role, active in people:
        data.staff(staff_id, department, role, name=f"员工{staff_id[1:]}", active=active,
                   email=None if staff_id in without_email else mail(staff_id))
    return data


@pytest.fixture
def directory(engine) -> Directory:
    company().insert(engine, {"departments", "staff"})
    return Directory.load(Source(engine), load_settings())


def emails(result) -> list[str]:
    return [recipient.email for recipient in result.recipients]


def test_roles_come_from_the_staff_and_departments_tables(directory):
    assert directory.operations_manager().staff_id == "S003"  # the first active manager of OPS by staff_id
    assert [p.staff_id for p in directory.deputies()] == ["S005"]
    assert [p.staff_id for p in directory.executives()] == ["S001", "S002"]
    assert directory.audit_lead().staff_id == "S006"  # the first auditor of OPS
    assert directory.operations_departments() == {"OPS", "CS1", "CS2"}
    assert sorted(p.staff_id for p in directory.operations_staff()) == [
        "S003", "S004", "S005", "S006", "S007", "S010", "S011"]


def test_the_audit_lead_setting_names_the_reviewer(engine):
    company().insert(engine, {"departments", "staff"})
    directory = Directory.load(Source(engine), load_settings(audit_lead="S007"))
    assert directory.audit_lead().staff_id == "S007"
    result = draft_recipients(directory)
    assert result.recipients == ()
    assert result.notes == ("S007 员工007 (audit lead) has no e-mail address in the staff table: no mail",)
    unknown = draft_recipients(Directory.load(Source(engine), load_settings(audit_lead="S999")))
    assert unknown.notes == ("OPSAUDIT_AUDIT_LEAD S999 is not in the staff table",)


def test_a_report_goes_to_the_manager_deputy_heads_and_for_a_major_problem_executives(directory):
    config = Recipients(reports={"cs-monthly": (Configured(email="board@example.com", language="en"),)})

    result = report_recipients(directory, config, "cs-monthly", departments=["CS1", "CS2", "SAL", "XX"], major=True)

    assert emails(result) == [mail("S003"), mail("S005"), mail("S010"), mail("S001"), "board@example.com"]
    assert result.notes == (
        "department CS2 has no head (departments.head_id): no head to tell",
        "S020 员工020 (head of SAL) is no longer active: no mail",
        "department XX is not in the departments table: no head to tell",
        "S002 员工002 (executive) has no e-mail address in the staff table: no mail",
    )
    assert result.recipients[0].reasons == ("operations manager",)
    assert result.recipients[0].address == Address(mail("S003"), "员工003", "S003")


def test_a_report_without_a_major_problem_does_not_go_to_executives(directory):
    result = report_recipients(directory, Recipients(), "execution-monthly")
    assert emails(result) == [mail("S003"), mail("S005")] and result.notes == ()


def test_an_alert_names_the_responsible_department_head_and_the_configured_alert_list(directory):
    config = Recipients(alerts=(Configured(staff_id="S021"), Configured(staff_id="S404"),
                                Configured(email="not-an-address")))
    result = alert_recipients(directory, config, "CS1")
    assert emails(result) == [mail("S003"), mail("S005"), mail("S010"), mail("S001"), mail("S021")]
    assert "config/recipients.yaml: alerts: staff_id S404 is not in the staff table: no mail" in result.notes
    assert "config/recipients.yaml: alerts: 'not-an-address' is not an e-mail address: no mail" in result.notes


def test_one_address_once_with_every_reason_and_the_configured_language(directory):
    config = Recipients(alerts=(Configured(staff_id="S003", language="en"),
                                Configured(email=mail("S010").upper())))
    result = alert_recipients(directory, config, "CS1")
    manager = result.recipients[0]
    assert (manager.staff_id, manager.language) == ("S003", "en")
    assert manager.reasons == ("operations manager", "config/recipients.yaml: alerts")
    assert emails(result).count(mail("S010")) == 1
    assert result.by_language("zh-CN") == {
        "en": (Address(mail("S003"), "员工003", "S003"),),
        "zh-CN": tuple(r.address for r in result.recipients[1:]),
    }


def test_the_circulation_goes_to_all_active_operations_staff(directory):
    result = circulation_recipients(directory, Recipients(circulation=(Configured(email="hr@example.com"),)))
    assert emails(result) == [mail(s) for s in ("S003", "S004", "S005", "S006", "S010", "S011")] + ["hr@example.com"]
    assert result.notes == ("S007 员工007 (operations staff) has no e-mail address in the staff table: no mail",)


def test_named_staff_such_as_a_findings_owner(directory):
    result = resolve(directory, named={"S011": "owner of finding F1", "S012": "owner of finding F2",
                                       "S404": "owner of finding F3"})
    assert emails(result) == [mail("S011")] and result.recipients[0].reasons == ("owner of finding F1",)
    assert result.notes == ("S012 员工012 (owner of finding F2) is no longer active: no mail",
                            "owner of finding F3: staff_id S404 is not in the staff table: no mail")


def test_a_missing_operations_manager_and_a_bad_address_are_notes(engine):
    data = Dataset()
    data.department("OPS")
    data.staff("S001", "OPS", "deputy_manager", email="wang at example.com")
    data.insert(engine, {"departments", "staff"})
    result = report_recipients(Directory.load(Source(engine), load_settings()), Recipients(), "cs-monthly")
    assert result.recipients == ()
    assert result.notes == (
        "no active manager in department OPS (OPSAUDIT_OPERATIONS_DEPARTMENT): no operations manager",
        "S001 Staff S001 (deputy manager): staff e-mail 'wang at example.com' is not an address: no mail",
    )


def test_without_a_staff_table_configured_addresses_still_receive(engine):
    metadata.create_all(engine, tables=[metadata.tables["departments"]])
    directory = Directory.load(Source(engine), load_settings())
    result = report_recipients(directory, Recipients(reports={"cs-monthly": (Configured(email="a@example.com"),)}),
                               "cs-monthly")
    assert emails(result) == ["a@example.com"]
    assert result.notes[0] == "staff: missing table: recipients by role from it are unknown"


def test_the_source_mapping_is_honoured(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE employees (emp_no VARCHAR(16), full_name TEXT, dept VARCHAR(16), "
                             "title VARCHAR(32), mail TEXT, active BOOLEAN)"))
        conn.execute(sa.text("INSERT INTO employees VALUES ('E1', '李娜', 'OPS', 'manager', 'lina@example.com', "
                             "TRUE)"))
    company_departments = Dataset()
    company_departments.department("OPS")
    company_departments.insert(engine, {"departments"})
    mapping = SourceMapping(tables={"staff": TableSource(table="employees", columns={
        "staff_id": "emp_no", "name": "full_name", "department_id": "dept", "role": "title", "email": "mail"})})
    directory = Directory.load(Source(engine, mapping), load_settings())
    result = resolve(directory, roles=[Role.OPERATIONS_MANAGER])
    assert result.addresses == (Address("lina@example.com", "李娜", "E1"),)


def test_an_unreadable_mapped_staff_table_is_one_clear_error(engine):
    from opsaudit.errors import SourceError

    mapping = SourceMapping(tables={"staff": TableSource(select="SELECT * FROM no_such_hr_table")})
    with pytest.raises(SourceError, match=r"^staff \(mapped SELECT\): cannot read the recipients: "):
        Directory.load(Source(engine, mapping), load_settings())
