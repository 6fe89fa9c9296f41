"""The admin console's cloud side: the audit log of admin actions and the people-import preview."""
