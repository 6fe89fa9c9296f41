"""Utilisation analytics computed from recorded history."""
