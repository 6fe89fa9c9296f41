"""Schemas of the attendance export: an agency's opt-in, one row, one page of rows."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from cloud.attendance.rules import Status


class AgencyOptInBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receiver: str = Field(
        min_length=1, max_length=200, description="the system that receives the export"
    )
    include_identity: StrictBool = Field(
        default=False,
        description="rows carry the person's name and NIP (only if the receiver needs them)",
    )
    remote_weekdays: list[StrictInt] = Field(
        default_factory=list,
        max_length=5,
        description="the agency's remote working weekdays, ISO numbers 1 (Monday) to 5 (Friday)",
    )

    @field_validator("remote_weekdays")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(d < 1 or d > 5 for d in days):
            raise ValueError("remote weekdays are 1 (Monday) to 5 (Friday)")
        return sorted(set(days))


class AgencyOptInCreate(AgencyOptInBase):
    """Opts the agency in (PUT /attendance/agencies/{agency}), or changes its terms."""


class AgencyOptInPublic(AgencyOptInBase):
    agency: str
    enabled_at: datetime


class AttendanceRowPublic(BaseModel):
    """One person on one day at one site; `absent`/`remote` rows have no times."""

    person_id: str
    agency: str
    site_id: str | None = Field(description="where the times were recorded; else the home site")
    date: date
    status: Status
    first_check_in: datetime | None = Field(description="earliest qualifying event, site time")
    last_presence: datetime | None = Field(description="latest qualifying event, site time")
    name: str | None = Field(default=None, description="only if the agency's opt-in says so")
    nip: str | None = Field(default=None, description="only if the agency's opt-in says so")


class AttendancePage(BaseModel):
    """Rows of up to `limit` people (ordered by person id); pass `next_after` as `after`."""

    model_config = ConfigDict(populate_by_name=True)

    agency: str
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    include_identity: bool = Field(description="rows carry name and NIP (the agency's opt-in)")
    rows: list[AttendanceRowPublic]
    next_after: str | None
