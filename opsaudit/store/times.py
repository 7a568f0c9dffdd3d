"""The store keeps instants in UTC; SQLite drops the zone, so naive values read back are UTC."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def to_db(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the store keeps only zone-aware instants")
    return moment.astimezone(UTC)


def from_db(moment: datetime | None, zone: tzinfo = UTC) -> datetime | None:
    if moment is None:
        return None
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.astimezone(zone)


def utcnow() -> datetime:
    return datetime.now(UTC)
