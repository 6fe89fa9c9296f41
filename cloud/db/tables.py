"""Table handles of the SQL state, one per model: the one place modules get them from.

SQLAlchemy Core statements (multi-row upserts, bulk updates) want `Table` objects;
the ORM classes in models*.py are the source of truth for their columns.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from cloud.db import (
    models,
    models_access,
    models_admin,
    models_attendance,
    models_fleet,
    models_identity,
    models_notifications,
    models_privacy,
    models_rooms,
    models_scim,
    models_transport,
    models_transport_live,
    models_transport_rides,
    models_transport_seats,
    models_visitors,
)

ACCESS_CHAINS = cast(Table, models_access.AccessChain.__table__)
ACCESS_CHANGES = cast(Table, models_access.AccessChange.__table__)
ACCESS_DOORS = cast(Table, models_access.AccessDoor.__table__)
ACCESS_GRANTS = cast(Table, models_access.AccessGrant.__table__)
ACCESS_GROUPS = cast(Table, models_access.AccessGroup.__table__)
ACCESS_HOLIDAYS = cast(Table, models_access.AccessHoliday.__table__)
ACCESS_LOG = cast(Table, models_access.AccessLogEntry.__table__)
ADMIN_AUDIT = cast(Table, models_admin.AdminAudit.__table__)
ATTENDANCE_AGENCIES = cast(Table, models_attendance.AttendanceAgency.__table__)
BADGES = cast(Table, models.Badge.__table__)
BOOKINGS = cast(Table, models.Booking.__table__)
BOOKING_SERIES = cast(Table, models.BookingSeries.__table__)
BUILDINGS = cast(Table, models.Building.__table__)
DEAD_LETTERS = cast(Table, models.DeadLetter.__table__)
DESKS = cast(Table, models.Desk.__table__)
DEVICE_STATUS = cast(Table, models_fleet.DeviceStatus.__table__)
ENROLMENT_TOKENS = cast(Table, models_fleet.EnrolmentToken.__table__)
EVENTS = cast(Table, models.Event.__table__)
FLOORS = cast(Table, models.Floor.__table__)
INTEGRATION_EVENTS = cast(Table, models.IntegrationEvent.__table__)
NOTIFICATIONS = cast(Table, models_notifications.Notification.__table__)
NOTIFICATION_DELIVERIES = cast(Table, models_notifications.NotificationDelivery.__table__)
NOTIFICATION_PREFERENCES = cast(Table, models_notifications.NotificationPreference.__table__)
NODES = cast(Table, models.Node.__table__)
NODE_CONFIGS = cast(Table, models_fleet.NodeConfig.__table__)
NODE_CREDENTIALS = cast(Table, models_fleet.NodeCredential.__table__)
NODE_HEALTH_SAMPLES = cast(Table, models_fleet.NodeHealthSample.__table__)
PERSON_IDENTITIES = cast(Table, models_identity.PersonIdentity.__table__)
PRIVACY_READS = cast(Table, models_privacy.PersonalDataRead.__table__)
PEOPLE = cast(Table, models.Person.__table__)
PERSON_GROUPS = cast(Table, models_scim.PersonGroup.__table__)
PERSON_GROUP_MEMBERS = cast(Table, models_scim.PersonGroupMember.__table__)
PRESENCE_CHANGES = cast(Table, models.PresenceChange.__table__)
ROOMS = cast(Table, models.Room.__table__)
ROOM_BOOKINGS = cast(Table, models_rooms.RoomBooking.__table__)
ROOM_PRESENCE_CHANGES = cast(Table, models_rooms.RoomPresenceChange.__table__)
CALENDAR_TOKENS = cast(Table, models_rooms.CalendarToken.__table__)
SITES = cast(Table, models.Site.__table__)
WEBHOOK_DELIVERIES = cast(Table, models.WebhookDelivery.__table__)
WEBHOOK_SUBSCRIPTIONS = cast(Table, models.WebhookSubscription.__table__)
ZONES = cast(Table, models.Zone.__table__)
TRANSPORT_AGENCIES = cast(Table, models_transport.Agency.__table__)
TRANSPORT_CALENDAR = cast(Table, models_transport.Calendar.__table__)
TRANSPORT_CALENDAR_DATES = cast(Table, models_transport.CalendarDate.__table__)
TRANSPORT_ROUTES = cast(Table, models_transport.Route.__table__)
TRANSPORT_SHAPES = cast(Table, models_transport.ShapeVertex.__table__)
TRANSPORT_SITE_STOPS = cast(Table, models_transport.SiteStop.__table__)
TRANSPORT_STOPS = cast(Table, models_transport.Stop.__table__)
TRANSPORT_STOP_TIMES = cast(Table, models_transport.StopTime.__table__)
TRANSPORT_TRIPS = cast(Table, models_transport.Trip.__table__)
TRANSPORT_VEHICLES = cast(Table, models_transport.Vehicle.__table__)
VISITS = cast(Table, models_visitors.Visit.__table__)

# Seat reservations and pool cars (migration 0012).
TRIP_SEATS = cast(Table, models_transport_seats.TripSeats.__table__)
RESERVATIONS = cast(Table, models_transport_seats.SeatReservation.__table__)
CAR_BOOKINGS = cast(Table, models_transport_seats.CarBooking.__table__)
CAR_POSITIONS = cast(Table, models_transport_seats.CarPosition.__table__)

# What vehicles' nodes decided at their doors (migration 0014).
TRANSPORT_BOARDINGS = cast(Table, models_transport_rides.TransportBoarding.__table__)
TRANSPORT_CAR_USES = cast(Table, models_transport_rides.TransportCarUse.__table__)

# Live operations (migration 0013).
TRANSPORT_STOP_EVENTS = cast(Table, models_transport_live.StopEvent.__table__)
TRANSPORT_TRIP_ASSIGNMENTS = cast(Table, models_transport_live.TripAssignment.__table__)
TRANSPORT_TRIP_CANCELLATIONS = cast(Table, models_transport_live.TripCancellation.__table__)
TRANSPORT_SERVICE_ALERTS = cast(Table, models_transport_live.ServiceAlert.__table__)
