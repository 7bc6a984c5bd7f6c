"""Placeholder: the compose tasks (issue 4)."""

TASKS: tuple = ()
