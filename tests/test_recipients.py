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
    reason,
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


def notes(result, language: str = "zh-CN") -> tuple[str, ...]:
    return tuple(note.text(language) for note in result.notes)


def reasons(recipient, language: str = "zh-CN") -> tuple[str, ...]:
    return tuple(why.text(language) for why in recipient.reasons)


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
    assert notes(result) == ("员工007（S007，稽查小组组长）在员工表中没有电子邮箱，未发送邮件",)
    assert notes(result, "en") == ("员工007 (S007, audit team lead) has no e-mail address in the staff table: no mail",)
    unknown = draft_recipients(Directory.load(Source(engine), load_settings(audit_lead="S999")))
    assert notes(unknown) == ("稽查小组组长S999（见OPSAUDIT_AUDIT_LEAD）不在员工表中",)
    assert notes(unknown, "en") == ("audit team lead S999 (see OPSAUDIT_AUDIT_LEAD) is not in the staff table",)


def test_a_report_goes_to_the_manager_deputy_heads_and_for_a_major_problem_executives(directory):
    config = Recipients(reports={"cs-monthly": (Configured(email="board@example.com", language="en"),)})

    result = report_recipients(directory, config, "cs-monthly", departments=["CS1", "CS2", "SAL", "XX"], major=True)

    assert emails(result) == [mail("S003"), mail("S005"), mail("S010"), mail("S001"), "board@example.com"]
    assert notes(result) == (
        "Dept CS2（CS2）未设负责人（departments.head_id），无法通知",
        "员工020（S020，Dept SAL负责人）已离职或停用，未发送邮件",
        "部门XX不在部门表中，无法通知其负责人",
        "员工002（S002，上级领导）在员工表中没有电子邮箱，未发送邮件",
    )
    assert notes(result, "en") == (
        "department Dept CS2 (CS2) has no head (departments.head_id): nobody to tell",
        "员工020 (S020, head of Dept SAL) is no longer active: no mail",
        "department XX is not in the departments table: its head cannot be told",
        "员工002 (S002, senior management) has no e-mail address in the staff table: no mail",
    )
    assert reasons(result.recipients[0]) == ("运营部经理",)
    assert result.recipients[0].address == Address(mail("S003"), "员工003", "S003")


def test_a_report_without_a_major_problem_does_not_go_to_executives(directory):
    result = report_recipients(directory, Recipients(), "execution-monthly")
    assert emails(result) == [mail("S003"), mail("S005")] and notes(result) == ()


def test_an_alert_names_the_responsible_department_head_and_the_configured_alert_list(directory):
    config = Recipients(alerts=(Configured(staff_id="S021"), Configured(staff_id="S404"),
                                Configured(email="not-an-address")))
    result = alert_recipients(directory, config, "CS1")
    assert emails(result) == [mail("S003"), mail("S005"), mail("S010"), mail("S001"), mail("S021")]
    assert "收件人配置（config/recipients.yaml: alerts）：员工编号S404不在员工表中，未发送邮件" in notes(result)
    assert "收件人配置（config/recipients.yaml: alerts）：“not-an-address”不是有效的电子邮箱地址，未发送邮件" \
        in notes(result)
    assert "recipients configuration (config/recipients.yaml: alerts): staff ID S404 is not in the staff table: " \
           "no mail" in notes(result, "en")


def test_one_address_once_with_every_reason_and_the_configured_language(directory):
    config = Recipients(alerts=(Configured(staff_id="S003", language="en"),
                                Configured(email=mail("S010").upper())))
    result = alert_recipients(directory, config, "CS1")
    manager = result.recipients[0]
    assert (manager.staff_id, manager.language) == ("S003", "en")
    assert reasons(manager) == ("运营部经理", "收件人配置（config/recipients.yaml: alerts）")
    assert reasons(manager, "en") == ("operations manager", "recipients configuration (config/recipients.yaml: alerts)")
    assert emails(result).count(mail("S010")) == 1
    assert result.by_language("zh-CN") == {
        "en": (Address(mail("S003"), "员工003", "S003"),),
        "zh-CN": tuple(r.address for r in result.recipients[1:]),
    }


def test_the_circulation_goes_to_all_active_operations_staff(directory):
    result = circulation_recipients(directory, Recipients(circulation=(Configured(email="hr@example.com"),)))
    assert emails(result) == [mail(s) for s in ("S003", "S004", "S005", "S006", "S010", "S011")] + ["hr@example.com"]
    assert notes(result) == ("员工007（S007，运营部员工）在员工表中没有电子邮箱，未发送邮件",)


def test_named_staff_such_as_a_findings_owner(directory):
    owner = reason("owner")
    result = resolve(directory, named={"S011": owner, "S012": owner, "S404": owner})
    assert emails(result) == [mail("S011")] and reasons(result.recipients[0]) == ("整改责任人",)
    assert notes(result) == ("员工012（S012，整改责任人）已离职或停用，未发送邮件",
                             "整改责任人：员工编号S404不在员工表中，未发送邮件")
    assert notes(result, "en") == ("员工012 (S012, rectification owner) is no longer active: no mail",
                                   "rectification owner: staff ID S404 is not in the staff table: no mail")


def test_a_missing_operations_manager_and_a_bad_address_are_notes(engine):
    data = Dataset()
    data.department("OPS")
    data.staff("S001", "OPS", "deputy_manager", email="wang at example.com")
    data.insert(engine, {"departments", "staff"})
    result = report_recipients(Directory.load(Source(engine), load_settings()), Recipients(), "cs-monthly")
    assert result.recipients == ()
    assert notes(result) == (
        "Dept OPS（OPS）没有在职的经理（见OPSAUDIT_OPERATIONS_DEPARTMENT），无法通知运营部经理",
        "Staff S001（S001，运营部副经理）在员工表中的电子邮箱“wang at example.com”不是有效地址，未发送邮件",
    )


def test_without_a_staff_table_configured_addresses_still_receive(engine):
    metadata.create_all(engine, tables=[metadata.tables["departments"]])
    directory = Directory.load(Source(engine), load_settings())
    result = report_recipients(directory, Recipients(reports={"cs-monthly": (Configured(email="a@example.com"),)}),
                               "cs-monthly")
    assert emails(result) == ["a@example.com"]
    assert notes(result)[0] == "数据源缺少员工或部门表（staff），无法按角色确定收件人"
    assert notes(result, "en")[0] == \
        "the source has no staff or departments table (staff): recipients by role are unknown"


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
    with pytest.raises(SourceError, match=r"^staff（映射的查询语句）：无法读取收件人（") as refused:
        Directory.load(Source(engine, mapping), load_settings())
    assert refused.value.text("en").startswith("staff (mapped SELECT): cannot read the recipients: ")
