"""Meeting rooms as bookable places: bookings, radar no-shows, the door panel, analytics, calendars."""
