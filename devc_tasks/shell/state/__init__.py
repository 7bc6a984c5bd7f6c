"""The state volume of a container: where it lives and whether it persists (``mount``),
the archive transport (``transport``), and the operations on it (``backup``,
``restore``, ``reset``). The archive checks themselves are pure: ``core.archive``.
"""
