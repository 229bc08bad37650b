"""The layers stay layered: checks over the source, run like any test.

* **No import circles** among the project's modules (``monitor/**`` and ``cli.py``),
  counting imports inside functions and under ``if TYPE_CHECKING``: an import deferred
  into a function still ties two modules together, it only hides the knot until run time.
  ``from package import name`` is an edge to the submodule when ``name`` is one, else to
  the package's ``__init__``; the implicit import of a parent package is not an edge (a
  package importing its own submodules is the usual shape, not a circle).
* **The low packages import only what lies below them**: ``monitor.config`` is read by
  everything, so it may use only errors, the YAML reader, the calendar, the cron parser and
  the sinks (whose declared options it validates); the sinks only errors and the notice
  texts. A registry config validates against moves down, or is handed in.
* **click only in cli.py**: the library is usable without the CLI.
* **The wall clock only in the entry points.** Time is an argument: every function below
  takes ``now`` / ``as_of``, so tests need no clock patching and an audit can be replayed
  as of any moment. ``cli.py`` is the one place allowed to read it: it is the entry point
  of every command, and it hands its clock down — to the ``serve`` daemon and the job
  runner (``Runner(clock=app.now, wall=time.time)``: the inbox's settle check compares
  file modification times, wall-clock seconds), to ``demo`` and ``demo replay``
  (``now=App.now()``).
  A new entry point (the web application) joins :data:`CLOCK_ALLOWED` and does the same.
  A read is any use, called or passed along, of :data:`CLOCK_READS` (``datetime.now``,
  ``utcnow``, ``today``, ``date.today``, ``time.time``, ``time.time_ns``, SQL ``now()`` and
  its kin), and a call without arguments of :data:`CLOCK_READS_WITHOUT_ARGUMENTS`
  (``time.localtime()``, ``gmtime()``, ``ctime()``, ``asctime()``; ``strftime(fmt)``).
  ``time.monotonic``, ``perf_counter`` and ``process_time`` are allowed anywhere: they
  measure how long something took (a timeout, a run's duration), never which moment it is.
  A read that must stay below the entry points is listed with its reason in
  :data:`CLOCK_EXCEPTIONS` (none today), so that no other read hides behind it.

Each check is a function over a source tree, and each is also run on a small tree written
to ``tmp_path`` that breaks it, so none of them can pass by finding nothing.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_ALLOWED = {"cli.py", "monitor/web/app.py"}  # the two entry points
# (file, read) → why it is still there; each entry is a debt to pay, not a permission
CLOCK_EXCEPTIONS: dict[tuple[str, str], str] = {}
CLICK_ALLOWED = {"cli.py"}
CLOCK_READS = {
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today", "time.time", "time.time_ns",
    "sqlalchemy.func.now", "sqlalchemy.func.current_timestamp",
    "sqlalchemy.func.current_date", "sqlalchemy.func.localtimestamp",
    "sqlalchemy.func.sysdate"}
CLOCK_READS_WITHOUT_ARGUMENTS = {  # these read the clock only when given no time
    "time.localtime": 0, "time.gmtime": 0, "time.ctime": 0, "time.asctime": 0,
    "time.strftime": 1}
# module (or package) → the project modules it may import, besides its own package's
LOW_LAYERS = {
    "monitor.config": ("monitor.errors", "monitor.yamlsrc", "monitor.calendar",
                       "monitor.crontab", "monitor.sinks", "monitor.masking",
                       "monitor.regions"),
    "monitor.sinks": ("monitor.errors", "monitor.notices", "monitor.masking"),
}


# ------------------------------------------------------------------ reading the tree

@dataclass(frozen=True)
class Module:
    name: str        # dotted: monitor.rules.kinds.overdue, cli
    path: Path
    where: str       # relative path, for messages
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


@functools.cache
def modules(root: Path) -> dict[str, Module]:
    """Every project module under ``root``: monitor/**/*.py and cli.py (parsed once)."""
    paths = sorted((root / "monitor").rglob("*.py"))
    if (root / "cli.py").exists():
        paths.append(root / "cli.py")
    out = {}
    for path in paths:
        rel = path.relative_to(root)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        out[name] = Module(name, path, rel.as_posix(),
                           ast.parse(path.read_text(encoding="utf-8"), str(rel)))
    return out


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, names: dict[str, Module]) -> str | None:
    """The project module ``name`` is (or lies in), None if it is not the project's."""
    while name and name not in names:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: Module, names: dict[str, Module]) -> Iterator[tuple[str, int]]:
    """(project module imported, line) for every import statement, at any depth."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, names)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                full = f"{base}.{alias.name}"  # a submodule, or a name in the package
                target = full if full in names else _known(base, names)
                if target:
                    yield target, node.lineno


def import_graph(root: Path) -> tuple[dict[str, Module], dict[str, dict[str, int]]]:
    """The modules, and module → {module it imports: line of the first such import}."""
    names = modules(root)
    graph: dict[str, dict[str, int]] = {name: {} for name in names}
    for name, module in names.items():
        for target, line in imports(module, names):
            if target != name:
                graph[name].setdefault(target, line)
    return names, graph


# ------------------------------------------------------------------ the checks

def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _cycle_through(first: str, members: set[str], graph: dict[str, dict[str, int]]
                   ) -> list[str]:
    """A shortest circle from ``first`` back to itself inside one component."""
    paths = {first: [first]}
    queue = [first]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == first:
                return paths[node] + [first]
            if nxt in members and nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError("not a component")  # pragma: no cover


def import_cycles(root: Path) -> list[str]:
    """One line per import circle: each step with the file and line of its import."""
    names, graph = import_graph(root)
    out = []
    for component in _strongly_connected(graph):
        cycle = _cycle_through(component[0], set(component), graph)
        steps = [f"{a} ({names[a].where}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
        out.append(f"{len(component)} modules in a circle, e.g. "
                   + " → ".join(steps) + f" → {cycle[0]}"
                   + (f"; all of them: {', '.join(component)}" if len(component) > 2 else ""))
    return out


def layer_breaches(root: Path, layers: dict[str, tuple[str, ...]]) -> list[str]:
    """``file:line: A imports B`` where a low module imports outside what it may."""
    names, graph = import_graph(root)
    out = []
    for name, targets in sorted(graph.items()):
        layer = next((low for low in layers if name == low or name.startswith(low + ".")),
                     None)
        if layer is None:
            continue
        allowed = (layer, *layers[layer])
        for target, line in sorted(targets.items()):
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                out.append(f"{names[name].where}:{line}: {name} imports {target}, above it "
                           f"(it may use {', '.join(layers[layer])})")
    return out


def click_imports(root: Path, allowed: set[str] = CLICK_ALLOWED) -> list[str]:
    """``file:line`` of every import of click outside ``allowed``."""
    out = []
    for module in modules(root).values():
        if module.where in allowed:
            continue
        for node in ast.walk(module.tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                else []
            if any(n == "click" or n.startswith("click.") for n in names):
                out.append(f"{module.where}:{node.lineno}: imports click")
    return out


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name → what it stands for, from the module's imports (any depth)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.partition(".")[0]] = a.name if a.asname else \
                    a.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def clock_reads(root: Path, allowed: set[str] = CLOCK_ALLOWED,
                exceptions: dict[tuple[str, str], str] | None = None) -> list[str]:
    """``file:line: what`` for every wall-clock read outside the ``allowed`` files, but
    the ``exceptions`` ((file, read) pairs)."""
    exceptions = exceptions or {}
    out = set()
    for module in modules(root).values():
        if module.where in allowed:
            continue
        aliases = _aliases(module.tree)
        calls = {id(n.func): n for n in ast.walk(module.tree) if isinstance(n, ast.Call)}
        for node in ast.walk(module.tree):
            if not isinstance(node, (ast.Name, ast.Attribute)):
                continue
            what = _dotted(node, aliases)
            if (module.where, what) in exceptions:
                continue
            if what in CLOCK_READS:
                out.add((module.where, node.lineno, what))
            elif what in CLOCK_READS_WITHOUT_ARGUMENTS:
                call = calls.get(id(node))
                if call is not None and len(call.args) <= CLOCK_READS_WITHOUT_ARGUMENTS[what]:
                    out.add((module.where, node.lineno, f"{what}()"))
    return [f"{where}:{line}: reads the wall clock ({what})" for where, line, what in sorted(out)]


# ------------------------------------------------------------------ the project

def test_no_import_circles():
    cycles = import_cycles(ROOT)
    assert not cycles, "import circles (break them: move the shared piece down, or hand " \
        "it in as an argument):\n" + "\n".join(cycles)


def test_low_layers_import_nothing_above_them():
    breaches = layer_breaches(ROOT, LOW_LAYERS)
    assert not breaches, "\n".join(breaches)


def test_click_only_in_cli():
    found = click_imports(ROOT)
    assert not found, "click belongs to cli.py alone:\n" + "\n".join(found)


def test_the_wall_clock_only_in_the_entry_points():
    found = clock_reads(ROOT, exceptions=CLOCK_EXCEPTIONS)
    assert not found, ("time is an argument below the entry points (take now / as_of):\n"
                       + "\n".join(found))


def test_the_checks_read_the_whole_project():
    """The checks above look at every module, including the ones that do read the clock."""
    names, graph = import_graph(ROOT)
    assert {"cli", "monitor.config", "monitor.rules.kinds.overdue"} <= set(names)
    assert "monitor.engine" in graph["cli"]  # imported inside a command: seen all the same
    assert any(r.startswith("cli.py:") for r in clock_reads(ROOT, allowed=set()))
    every = clock_reads(ROOT)
    for where, what in CLOCK_EXCEPTIONS:  # an exception no longer needed must go
        assert any(r.startswith(f"{where}:") and f"({what})" in r for r in every), \
            f"{where} no longer reads {what}: remove it from CLOCK_EXCEPTIONS"


def test_every_rule_kind_meets_the_kind_contract():
    """Every module of monitor/rules/kinds/ not named _… is a kind, registered, and meets
    :class:`~monitor.rules.kinds.Kind` (mypy checks the signatures; this, the members)."""
    from monitor.rules.kinds import KINDS, Kind

    folder = ROOT / "monitor" / "rules" / "kinds"
    kinds = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert kinds == set(KINDS)
    for name, module in KINDS.items():
        assert module.__name__.endswith(f".kinds.{name}")
        assert isinstance(module, Kind), f"kind {name} does not meet the Kind contract"


# ------------------------------------------------------------------ each check can fail

def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    root = _tree(tmp_path, {
        "monitor/__init__.py": "",
        "monitor/low.py": "import os\n\n\ndef f():\n    from .high import g\n    return g\n",
        "monitor/high.py": "from monitor import low\n",
        "monitor/pkg/__init__.py": "from . import a\n",
        "monitor/pkg/a.py": "from monitor.pkg import b\n",
        "monitor/pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                            "    from .a import X\n",
        "cli.py": "from monitor import high\n"})
    assert import_cycles(root) == [
        "2 modules in a circle, e.g. monitor.high (monitor/high.py:1) → "
        "monitor.low (monitor/low.py:5) → monitor.high",
        "2 modules in a circle, e.g. monitor.pkg.a (monitor/pkg/a.py:1) → "
        "monitor.pkg.b (monitor/pkg/b.py:3) → monitor.pkg.a"]


def test_a_package_importing_its_submodules_is_no_circle(tmp_path):
    root = _tree(tmp_path, {
        "monitor/__init__.py": "",
        "monitor/kinds/__init__.py": "from . import one\nKINDS = {'one': one}\n",
        "monitor/kinds/one.py": "from ._common import helper\n",
        "monitor/kinds/_common.py": "helper = 1\n"})
    assert import_cycles(root) == []


def test_a_low_layer_importing_upwards_is_found(tmp_path):
    root = _tree(tmp_path, {
        "monitor/__init__.py": "",
        "monitor/errors.py": "",
        "monitor/engine.py": "",
        "monitor/config/__init__.py": "from .load import x\n",
        "monitor/config/load.py": "from ..errors import E\n\n\ndef f():\n"
                                  "    from ..engine import evaluate\n"})
    assert layer_breaches(root, {"monitor.config": ("monitor.errors",)}) == [
        "monitor/config/load.py:5: monitor.config.load imports monitor.engine, above it "
        "(it may use monitor.errors)"]


def test_click_outside_cli_is_found(tmp_path):
    root = _tree(tmp_path, {
        "monitor/__init__.py": "",
        "monitor/ok.py": "from .clicks import count\n",
        "monitor/clicks.py": "count = 0\n",
        "monitor/bad.py": "def f():\n    from click import echo\n    import click.testing\n",
        "cli.py": "import click\n"})
    assert click_imports(root) == ["monitor/bad.py:2: imports click",
                                   "monitor/bad.py:3: imports click"]


def test_a_wall_clock_read_outside_the_entry_points_is_found(tmp_path):
    root = _tree(tmp_path, {
        "monitor/__init__.py": "",
        "monitor/a.py": "import datetime as dt\nimport time\n"
                        "x = dt.datetime.now()\ny = time.monotonic()\nz = time.localtime(0)\n"
                        "w = time.localtime()\n",
        "monitor/b.py": "from datetime import date, datetime\nfrom time import time\n"
                        "from sqlalchemy import func\n\n\n"
                        "def clock(f=datetime.utcnow):\n    return date.today(), time()\n\n\n"
                        "q = func.now()\nr = func.count()\n",
        "cli.py": "from datetime import datetime\nnow = datetime.now()\n"})
    assert clock_reads(root) == [
        "monitor/a.py:3: reads the wall clock (datetime.datetime.now)",
        "monitor/a.py:6: reads the wall clock (time.localtime())",
        "monitor/b.py:6: reads the wall clock (datetime.datetime.utcnow)",
        "monitor/b.py:7: reads the wall clock (datetime.date.today)",
        "monitor/b.py:7: reads the wall clock (time.time)",
        "monitor/b.py:10: reads the wall clock (sqlalchemy.func.now)"]
