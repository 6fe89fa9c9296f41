"""The cloud's background jobs and who runs them: exactly one elected process at a time."""
