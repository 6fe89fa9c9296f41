"""Sites, buildings, floors, desks and rooms: the layout and the live floor map."""
