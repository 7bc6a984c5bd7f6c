"""The functional core: pure decisions as functions of data.

Modules here import only the standard library and each other (never
``devc_tasks.shell`` or ``devc_tasks.tasks``); tests/unit/test_layout.py holds
that line.
"""
