"""Visitors (docs/visitors.md): invitations, passes, reception check-in/out, guest credentials
in the edge snapshots, and the visitor log's retention."""
