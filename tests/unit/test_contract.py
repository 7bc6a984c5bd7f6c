"""The JSON contract: a schema for every --json document kind, strict enough to catch a field
removed, renamed or retyped, and validation that no test can route around."""

from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from devc_tasks import ns
from devc_tasks.core.doctor_facts import TITLES
from devc_tasks.core.errors import EXIT_CODES
from devc_tasks.tasks.ui import KINDS, SCHEMA_VERSION, Output
from tests.support.contract import SCHEMA_BASE, problems, schemas, validate

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
SAMPLES: dict[str, dict[str, Any]] = json.loads((Path(__file__).with_name("contract_samples.json")).read_text())
"""One real document of each kind, recorded from the integration suite (DEVC_RECORD_DOCS)."""

# Which documents each task with --json prints: a new task with --json fails here until it
# names its documents (and so has schemas). Every task may also print an "error" document.
TASK_DOCUMENTS = {
    "tailscale.up": {"up", "up.dry-run"},
    "tailscale.restart": {"restart"},
    "tailscale.down": {"down", "down.all"},
    "tailscale.logout": {"logout"},
    "tailscale.status": {"status", "status.all"},
    "tailscale.hostname": {"hostname"},
    "tailscale.doctor": {"doctor", "doctor.all"},
    "tailscale.state.show": {"state.show"},
    "tailscale.state.backup": {"state.backup"},
    "tailscale.state.restore": {"state.restore"},
    "tailscale.state.reset": {"state.reset"},
    "tailscale.compose": {"compose.check", "compose.snippet", "compose.write"},
    "tailscale.prune": {"prune"},
}


def _tasks(collection: Any, prefix: str = "") -> Any:
    for name, t in collection.tasks.items():
        yield prefix + name, t
    for name, sub in collection.collections.items():
        yield from _tasks(sub, prefix + name + ".")


def test_every_task_with_json_has_its_documents_named():
    with_json = {name for name, t in _tasks(ns) if "json" in inspect.signature(t.body).parameters}
    assert with_json == set(TASK_DOCUMENTS)
    assert set().union(*TASK_DOCUMENTS.values()) | {"error"} == set(KINDS)


def test_every_document_kind_has_a_schema_file_and_no_file_is_stray():
    assert set(schemas()) == set(KINDS) | {"common", "event"}  # event: one --events line, not a document
    for name, schema in schemas().items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert schema["$id"] == f"{SCHEMA_BASE}{name}.json", name
        if name not in ("common", "event"):
            assert schema["properties"]["document"] == {"const": name}, name


def test_the_schemas_are_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    for schema in schemas().values():
        Draft202012Validator.check_schema(schema)


def test_the_schema_version_is_the_one_the_documents_carry():
    assert schemas()["common"]["$defs"]["envelope"]["properties"]["schema_version"] == {
        "const": SCHEMA_VERSION,
        "description": schemas()["common"]["$defs"]["envelope"]["properties"]["schema_version"]["description"],
    }


def test_enums_follow_the_code():
    """An error kind or a doctor check added in the code must be added to the schema too."""
    defs = schemas()["common"]["$defs"]
    assert defs["error"]["properties"]["kind"]["enum"] == sorted(EXIT_CODES)
    assert defs["check"]["properties"]["name"]["enum"] == list(TITLES)


@pytest.mark.parametrize("kind", KINDS)
def test_a_real_document_of_each_kind_is_valid(kind):
    assert SAMPLES[kind]["document"] == kind
    assert problems(SAMPLES[kind]) == []


def _drop(path: str):
    def f(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for p in parents:
            doc = doc[p] if not p.isdigit() else doc[int(p)]  # type: ignore[index]
        del doc[last]

    return f


def _set(path: str, value: Any):
    def f(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for p in parents:
            doc = doc[p] if not p.isdigit() else doc[int(p)]  # type: ignore[index]
        doc[last] = value

    return f


def _rename(kind: str, old: str, new: str):
    def f(doc: dict[str, Any]) -> None:
        doc[new] = doc.pop(old)

    return f


# (kind, mutation, what a script would notice)
MUTATIONS = [
    ("up", _drop("ssh"), "the ssh line is gone"),
    ("up", _rename("up", "outcome", "result"), "outcome renamed"),
    ("up", _set("outcome", "joined"), "an outcome no script knows"),
    ("up", _set("node/ips", "100.64.0.1"), "ips no longer a list"),
    ("up", _drop("node/dns_name"), "a Running node without its MagicDNS name"),
    ("up", _set("api/device", "yes"), "device no longer an object"),
    ("up", _drop("schema_version"), "no contract version"),
    ("up", _set("schema_version", "2"), "another contract version"),
    ("up", _drop("document"), "no document kind"),
    ("up", _set("document", "status"), "the wrong kind"),
    ("up", _set("ok", "true"), "ok a string"),
    ("status", _drop("error"), "not Running without saying why"),
    ("status", _drop("backend_state"), "backend_state gone"),
    ("status", _set("peers", "0"), "peers a string"),
    ("status.all", _drop("containers/0/container_state"), "a row without its container state"),
    ("status.all", _set("containers/0/container_state", "up"), "a container state Docker does not have"),
    ("doctor", _set("checks/0/status", "ok"), "a check status no script knows"),
    ("doctor", _drop("checks/0/fix"), "a check without its fix field"),
    ("doctor", _set("checks/0/name", "docker"), "a check renamed"),
    ("error", _drop("error/exit_code"), "an error without its exit code"),
    ("error", _set("error/kind", "oops"), "an error kind not in the exit-code table"),
    ("error", _set("ok", True), "an error that says ok"),
    ("state.show", _set("mount/kind", "disk"), "a mount kind no script knows"),
    ("state.backup", _set("bytes", -1), "a negative size"),
    ("state.restore", _drop("daemon_restarted"), "daemon_restarted gone"),
    ("state.reset", _rename("state.reset", "backup", "backup_path"), "backup renamed"),
    ("compose.check", _drop("requirements/0/present"), "a requirement without its verdict"),
    ("compose.write", _drop("docker_compose_file"), "the dockerComposeFile line gone"),
    ("prune", _drop("kept/0/reason"), "a kept device without its reason"),
    ("hostname", _set("warnings", "none"), "warnings not a list"),
    ("up.dry-run", _drop("steps/0/argv"), "a step without its command line"),
    ("down", _drop("node"), "the node after down gone"),
    ("down.all", _drop("containers/0/error_kind"), "an error row without its kind"),
    ("doctor.all", _drop("containers/0/ok"), "a row without its verdict"),
    ("restart", _set("warnings", [1]), "a warning that is no text"),
    ("logout", _set("done", "logged out"), "done not a list"),
    ("compose.snippet", _set("kind", "k8s"), "a configuration kind no script knows"),
]


@pytest.mark.parametrize(("kind", "mutate", "what"), MUTATIONS, ids=[m[2] for m in MUTATIONS])
def test_a_mutated_document_is_rejected(kind, mutate, what):
    doc = copy.deepcopy(SAMPLES[kind])
    mutate(doc)
    assert problems(doc), what
    with pytest.raises(AssertionError, match="breaks its schema|no schema"):
        validate(doc)


def test_an_added_field_is_accepted():
    """Forward compatibility: a newer devc-tasks may add fields; an older script ignores them."""
    for kind in KINDS:
        assert problems({**SAMPLES[kind], "added_later": {"x": 1}}) == [], kind


def test_every_kind_has_a_mutation_test():
    assert {m[0] for m in MUTATIONS} == set(KINDS)


def test_emit_writes_the_kind_and_the_contract_version(capsys):
    from devc_tasks import __version__

    Output(json_mode=True).emit({"ok": True, "hostname": "box", "source": "--hostname", "project": None, "project_source": None,
                                 "host": None, "host_source": None, "warnings": []}, lambda console: None, kind="hostname")
    doc = json.loads(capsys.readouterr().out)
    assert (doc["document"], doc["schema_version"], doc["devc_tasks_version"]) == ("hostname", SCHEMA_VERSION, __version__)
    assert problems(doc) == []
    Output(json_mode=True).error_doc({"kind": "usage", "message": "bad", "exit_code": 2})
    assert problems(json.loads(capsys.readouterr().out)) == []


# Parsing a task's stdout by hand would skip the schema: tests use TaskRun.doc or
# tests.support.contract.document. What is parsed by hand is another program's output: the
# devcontainer CLI's result line, or a line marked so.
_OTHER_PROGRAMS = re.compile(r"splitlines\(\)\[-1\]|# not a task document")


def test_no_test_parses_a_task_document_around_the_schema():
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.parts[-2] in ("standin", "support") or path.name in ("conftest.py", "test_standin.py"):  # the stand-in's own JSON
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"json\.loads\([^)]*stdout", line) and not _OTHER_PROGRAMS.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []
