"""The JSON contract, checked: every --json document a test gets is validated against the
schema its ``document`` field names (devc_tasks/schemas/<document>.json), so a field cannot
be renamed, dropped or retyped without a test failing.

Tests get documents through ``TaskRun.doc`` (tests/conftest.py, which validates every --json
run when it is made) or through ``document()`` here; tests/unit/test_contract.py makes sure
no test parses a task's stdout any other way.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_BASE = "https://devc-tasks.invalid/schemas/v1/"  # the schemas' $id prefix; their $refs are relative to it


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """Every shipped schema by file stem (``up``, ``status.all``, ``common``, ...), read as the
    installed package holds them."""
    folder = resources.files("devc_tasks") / "schemas"
    return {p.name[: -len(".json")]: json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".json")}


@cache
def _validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry: Any = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas().values())
    return {name: Draft202012Validator(s, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER) for name, s in schemas().items()}


def problems(doc: Any) -> list[str]:
    """What is wrong with ``doc`` against its schema; empty when it is valid."""
    if not isinstance(doc, dict):
        return [f"a --json document is an object, not {type(doc).__name__}"]
    kind = doc.get("document")
    validators = _validators()
    if not isinstance(kind, str) or kind in ("common", "event") or kind not in validators:
        return [f"no schema for document {kind!r} (devc_tasks/schemas/ has {sorted(k for k in validators if k != 'common')})"]
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}" for e in validators[kind].iter_errors(doc)]


def event_problems(line: Any) -> list[str]:
    """What is wrong with one ``--events`` line (schemas/event.json); empty when it is valid."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(event)'}: {e.message}" for e in _validators()["event"].iter_errors(line)]


def validate(doc: Any) -> Any:
    """``doc``, after checking it against its schema (an AssertionError naming each problem)."""
    _record(doc)
    found = problems(doc)
    assert not found, "the --json document breaks its schema:\n  " + "\n  ".join(found) + "\n" + json.dumps(doc, indent=2)[:4000]
    return doc


def document(stdout: str) -> Any:
    """The one JSON document a --json run printed on stdout, validated."""
    return validate(json.loads(stdout))


def _record(doc: Any) -> None:
    """DEVC_RECORD_DOCS=FILE: append every document seen (to study real ones when a schema changes)."""
    path = os.environ.get("DEVC_RECORD_DOCS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(doc) + "\n")
