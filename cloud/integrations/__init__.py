"""What leaves the system for other systems: webhooks, integration events, ICS/CSV."""
