"""Errors a user can cause: reported as one clear sentence, never a traceback."""


class UserError(Exception):
    """A mistake or a situation the user can fix (missing file, port in use...)."""
