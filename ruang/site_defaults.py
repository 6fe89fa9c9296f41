"""Facts about a site that the edge and the cloud must agree on.

Kept in one place so an edge deciding a tap offline and the cloud deciding the
same tap online draw the line at the same minute.
"""

from __future__ import annotations

DEFAULT_TIMEZONE = "Asia/Makassar"
"""IKN Nusantara keeps WITA (UTC+8); a site's own zone in the layout overrides it."""

EARLY_CHECKIN_S = 15 * 60
"""A booking can be checked into this many seconds before it starts."""
