"""Office transport as a shared service: shuttle schedules (GTFS), vehicles, live tracking,
ETAs, GTFS-Realtime, seat reservations, boarding and pool cars (docs/transport.md)."""
