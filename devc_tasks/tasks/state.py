"""Placeholder: the state tasks (issue 4)."""

TASKS: tuple = ()
