"""The package's shape holds: tasks -> api -> shell -> core, never back; no cycle; small modules.

Every module's imports (at module level and inside functions alike) are read
with ``ast``, nothing is imported. ``devc_tasks.core`` is the functional core:
pure modules that import only each other and the standard library (and the pure
parsers yaml and pyjson5, inside functions). ``devc_tasks.shell`` does the I/O
and may import the core. ``devc_tasks.api`` is the Python API (a facade over the
shell); ``devc_tasks.tasks`` is on top and calls it. ARCHITECTURE.md says
where each kind of change goes; this test is what keeps it true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "devc_tasks"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 120
# Classes still over the class budget, with their size today: they may shrink, never grow.
CLASS_EXCEPTIONS: dict[str, int] = {}
LAYERS = ("core", "shell", "api", "tasks")  # low to high; the package root and program.py sit above them all
# What the core never imports: the libraries that talk to the world.
IO_MODULES = frozenset({"docker", "requests", "urllib3", "rich", "invoke", "paramiko", "subprocess", "socket", "ssl", "shutil", "tempfile", "http"})


# What the core never calls (or, for the dotted names, even names): reads of the files, the
# clock, the current directory, the home folder and the environment. The shell reads them and
# passes the values in as data.
IO_NAMES = frozenset({
    "time.time", "time.time_ns", "time.monotonic", "time.sleep", "datetime.now", "datetime.datetime.now", "date.today",
    "os.environ", "os.getenv", "os.getcwd", "os.listdir", "os.stat", "os.path.exists", "os.path.isfile", "os.path.isdir",
    "os.path.abspath", "os.path.realpath", "os.path.expanduser", "os.path.getsize", "Path.cwd", "Path.home",
})
IO_METHODS = frozenset({"resolve", "absolute", "expanduser", "exists", "is_file", "is_dir", "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "glob", "rglob"})
IO_BUILTINS = frozenset({"open", "input"})


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def io_call_problems(source: str) -> list[str]:
    """Each read of the world in ``source``: a call or reference to an ``IO_NAMES`` name,
    a call of an ``IO_METHODS`` method (``path.resolve()``) or of ``open``/``input``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _dotted(node) in IO_NAMES:
            found.append(f"line {node.lineno}: {_dotted(node)}")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in IO_BUILTINS:
                found.append(f"line {node.lineno}: {f.id}()")
            elif isinstance(f, ast.Attribute) and f.attr in IO_METHODS and _dotted(f) not in IO_NAMES:
                found.append(f"line {node.lineno}: .{f.attr}()")
    return found


def layer(module: str) -> int:
    """0 core, 1 shell, 2 api, 3 tasks, 4 the package root and the console entry."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return len(LAYERS)


def direction_problems(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Each import that points up a layer (a core module importing the shell, ...)."""
    return [f"{m} imports {d}" for m, deps in sorted(graph.items()) for d in sorted(deps) if layer(d) > layer(m)]


def io_problems(imports: Mapping[str, Iterable[str]]) -> list[str]:
    """Each core module that imports an I/O library (``imports``: module -> top-level names)."""
    return [f"{m} imports {x}" for m, names in sorted(imports.items()) if layer(m) == 0 for x in sorted(set(names) & IO_MODULES)]


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (each one reported once, as a path back to its start)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                found.append([*path[path.index(d) :], d])
            elif d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def read_package() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, Path]]:
    """(module -> the package modules it imports, module -> the top-level names it imports, module -> file)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps: set[str] = set()
        names: set[str] = set()
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, node, path.name == "__init__.py")
                if base == "devc_tasks" and [a.name for a in node.names] == ["__version__"]:
                    continue  # the one version string (pyproject reads it there): data, not a dependency
                # `from pkg import mod` names a module when pkg.mod is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                if t.split(".")[0] == "devc_tasks":
                    if t in files and t != module:
                        deps.add(t)
                else:
                    names.add(t.split(".")[0])
        graph[module] = deps
        external[module] = names
    return graph, external, files


GRAPH, EXTERNAL, FILES = read_package()


def test_layers_exist_and_every_module_belongs_to_one() -> None:
    assert {layer(m) for m in GRAPH} == {0, 1, 2, 3, 4}
    top = sorted(m for m in GRAPH if layer(m) == len(LAYERS))
    assert top == ["devc_tasks", "devc_tasks.entry", "devc_tasks.program"], "new modules go in core/, shell/, api/ or tasks/"


def test_imports_point_down_only() -> None:
    """tasks -> api -> shell -> core: a core module importing the shell (or the shell the
    API, or the API a task) fails here."""
    assert direction_problems(GRAPH) == []


def test_the_core_does_no_io() -> None:
    assert io_problems(EXTERNAL) == []


def test_the_core_reads_no_file_clock_cwd_home_or_environment() -> None:
    found = {m: io_call_problems(p.read_text(encoding="utf-8")) for m, p in FILES.items() if layer(m) == 0}
    assert {m: f for m, f in found.items() if f} == {}


@pytest.mark.parametrize(
    "source, problems",
    [
        ("import os\nx = os.path.join('a', 'b').upper()\nd = {}.get('k')", []),
        ("p.resolve()", ["line 1: .resolve()"]),
        ("import time\nnow = time.time()", ["line 2: time.time"]),
        ("import os\nos.path.exists('/x')", ["line 2: os.path.exists"]),
        ("def f(exists=os.path.exists): ...", ["line 1: os.path.exists"]),
        ("os.path.abspath(p)", ["line 1: os.path.abspath"]),
        ("os.path.expanduser('~')", ["line 1: os.path.expanduser"]),
        ("home.expanduser()", ["line 1: .expanduser()"]),
        ("open('f').read()", ["line 1: open()"]),
        ("os.environ.get('HOME')", ["line 1: os.environ"]),
        ("Path.cwd()", ["line 1: Path.cwd"]),
        ("Path('x').read_text()", ["line 1: .read_text()"]),
    ],
)
def test_io_call_rule_catches_each_read(source: str, problems: list[str]) -> None:
    assert io_call_problems(source) == problems


def test_no_import_cycle() -> None:
    assert cycles(GRAPH) == []


def test_modules_stay_small() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in FILES.items()}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_classes_stay_small() -> None:
    big = {}
    for module, path in FILES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                name = f"{module}.{node.name}"
                if size > CLASS_EXCEPTIONS.get(name, MAX_CLASS_LINES):
                    big[name] = size
    assert big == {}


# The checks themselves, on made-up graphs: each rule must catch its violation.
@pytest.mark.parametrize(
    "graph, problems",
    [
        ({"devc_tasks.core.a": {"devc_tasks.core.b"}, "devc_tasks.core.b": set()}, []),
        ({"devc_tasks.shell.x": {"devc_tasks.core.a"}, "devc_tasks.tasks.t": {"devc_tasks.shell.x", "devc_tasks.core.a"}}, []),
        ({"devc_tasks.program": {"devc_tasks.tasks.t", "devc_tasks.shell.x"}}, []),
        ({"devc_tasks.core.a": {"devc_tasks.shell.x"}}, ["devc_tasks.core.a imports devc_tasks.shell.x"]),
        ({"devc_tasks.core.a": {"devc_tasks.tasks.t"}}, ["devc_tasks.core.a imports devc_tasks.tasks.t"]),
        ({"devc_tasks.shell.state.reset": {"devc_tasks.tasks.ui"}}, ["devc_tasks.shell.state.reset imports devc_tasks.tasks.ui"]),
        ({"devc_tasks.core.a": {"devc_tasks.program"}}, ["devc_tasks.core.a imports devc_tasks.program"]),
        ({"devc_tasks.tasks.node": {"devc_tasks.api", "devc_tasks.api.node"}, "devc_tasks.api.node": {"devc_tasks.shell.node"}}, []),
        ({"devc_tasks.shell.node": {"devc_tasks.api.types"}}, ["devc_tasks.shell.node imports devc_tasks.api.types"]),
        ({"devc_tasks.api.node": {"devc_tasks.tasks.ui"}}, ["devc_tasks.api.node imports devc_tasks.tasks.ui"]),
        ({"devc_tasks.core.a": {"devc_tasks.api"}}, ["devc_tasks.core.a imports devc_tasks.api"]),
    ],
)
def test_direction_rule_catches_an_upward_import(graph: dict[str, set[str]], problems: list[str]) -> None:
    assert direction_problems(graph) == problems


@pytest.mark.parametrize(
    "graph, found",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
        ({"a": {"a"}}, [["a", "a"]]),
    ],
)
def test_cycle_rule_catches_a_cycle(graph: dict[str, set[str]], found: list[list[str]]) -> None:
    assert cycles(graph) == found


@pytest.mark.parametrize(
    "imports, problems",
    [
        ({"devc_tasks.core.a": {"re", "yaml"}}, []),
        ({"devc_tasks.shell.x": {"docker", "subprocess"}}, []),
        ({"devc_tasks.core.a": {"re", "docker"}}, ["devc_tasks.core.a imports docker"]),
        ({"devc_tasks.core.a": {"subprocess"}}, ["devc_tasks.core.a imports subprocess"]),
    ],
)
def test_io_rule_catches_io_in_the_core(imports: dict[str, set[str]], problems: list[str]) -> None:
    assert io_problems(imports) == problems


def test_the_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """An import inside a function body counts too (lazy imports are how the core would
    sneak I/O in); a relative import resolves against its package."""
    tree = ast.parse("def f():\n    from ..shell import engine\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _resolve("devc_tasks.core.a", node, is_package=False) == "devc_tasks.shell"
    assert "devc_tasks.shell.engine" in FILES
