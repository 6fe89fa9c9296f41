"""Live changes pushed to open dashboards."""
