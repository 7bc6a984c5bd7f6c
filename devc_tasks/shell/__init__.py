"""The shell: the I/O around the core (Docker Engine, execs, files, the API).

Modules here may import ``devc_tasks.core`` and each other, never
``devc_tasks.tasks``; tests/unit/test_layout.py holds that line.
"""
