"""Placeholder: the doctor tasks (issue 4)."""

TASKS: tuple = ()
