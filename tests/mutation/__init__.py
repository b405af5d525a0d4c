"""Mutation testing of the safety code, on demand: ``python -m tests.mutation`` (see ``__main__``)."""
