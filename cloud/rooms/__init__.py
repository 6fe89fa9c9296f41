"""Meeting rooms as bookable places: bookings, radar no-shows, door panel, analytics, calendars."""
