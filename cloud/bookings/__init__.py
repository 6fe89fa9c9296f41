"""Desk bookings and their lifecycle: rules, check-in by tap or QR, auto-release."""
