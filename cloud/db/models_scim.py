"""ORM models of the groups a ministry's identity system provisions over SCIM (cloud/scim/).

A group is a list of people; when it names a `role` (and a `site`), its members hold
that role there (`cloud/scim/groups.py` `grants_of`). Shares `Base` with
cloud/db/models.py; cloud/db/tables.py and the Alembic environment import this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db.models import ID_LENGTH, Base, UtcDateTime


class PersonGroup(Base):
    """One SCIM group: its name, the identity system's key and the role it grants."""

    __tablename__ = "person_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(256), index=True)
    # A Ruang role (cloud/people/auth.py ROLES) its members hold, at `site_id` (None: the
    # role without a site, which only an admin's provisioning may give).
    role: Mapped[str | None] = mapped_column(String(32))
    site_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PersonGroupMember(Base):
    """A person in a group."""

    __tablename__ = "person_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("person_groups.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), primary_key=True, index=True)
