"""The stable reasons of door decisions: in the audit log, the contract and the access log.

One home so the allow-list policy (access_policy.py) and the snapshot's door rights
(door_rights.py) say the same thing for the same refusal; the cloud may count on them.
"""

from __future__ import annotations

ALLOWED = "allowed"
UNKNOWN_BADGE = "unknown badge"
REVOKED = "badge revoked"
NOT_YET_VALID = "badge not yet valid"
EXPIRED = "badge expired"
WRONG_DOOR = "not allowed at this door"
OUTSIDE_SCHEDULE = "outside schedule"
NO_SCHEDULE = "door has no schedule"
UNREADABLE = "unsupported card format"
ANTI_PASSBACK = "anti-passback"
