"""People, badges, authentication and who may see and change what."""
