"""Notifications: a transactional outbox, id/en templates, preferences, in-app list and email."""
