"""Attendance export for agencies' performance systems (e-kinerja), docs/attendance.md.

Off by default: an admin opts an agency in (`optin.py`, table `attendance_agencies`),
then admins and the data-protection role may export, per person and working day,
the first check-in and last presence per site (`export.py`), computed by the rules
in `rules.py` from the desk check-ins in `events` and the granted door decisions in
`access_log`. Every export is written to the admin audit and the personal-data
access audit.
"""
