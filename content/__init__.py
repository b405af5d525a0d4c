"""Panda3D scenes (the picture half of an exhibit). Scenes arrive with the
scene issue; nothing here is used by the runtime yet."""
