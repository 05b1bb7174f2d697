"""The import rule (docs/architecture.md), pinned as Wagtail and Django pin theirs.

Rooms along the data path, each importing only from its own room and the ones before:
base → smtp → models → setup → deliverability → outbox → backends → admin → edge
(hooks, tasks, commands). No cycle, counting imports inside functions; only ``apps.ready`` imports
inside a function; nothing imports ``tasks`` (django-q2 calls it by dotted name).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "wagtail_icarus_smtp"
NAME = PACKAGE.name

ROOMS = ["base", "smtp", "models", "setup", "deliverability", "outbox", "backends", "admin", "edge"]
EDGE = {"apps", "wagtail_hooks", "tasks", "management"}


def room(module):
    """The room of ``module`` (dotted, relative to the package)."""
    first = module.split(".")[0]
    if first in EDGE:
        return "edge"
    if first in ROOMS:
        return first
    return "base"


def modules():
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if "migrations" in parts:
            continue
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        yield name, is_package, path


def imports(name, is_package, path):
    """``(target module, line, function or None)`` of each import of our package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                functions.setdefault(id(inner), node.name)
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if name else []
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and (node.module == NAME or node.module.startswith(NAME + ".")):
                module = node.module[len(NAME) + 1 :]
            else:
                continue
            targets = [f"{module}.{alias.name}".strip(".") for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [
                alias.name[len(NAME) + 1 :] for alias in node.names if alias.name.startswith(NAME)
            ]
        for target in targets:
            yield target, node.lineno, functions.get(id(node))


def resolve(target, known):
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target


def graph():
    found = {name: (is_package, path) for name, is_package, path in modules()}
    edges, inner = {}, []
    for name, (is_package, path) in found.items():
        for target, line, function in imports(name, is_package, path):
            target = resolve(target, found)
            if not target or target == name or name.startswith(target + "."):
                continue  # the package itself, or a package's own __init__
            edges.setdefault(name, set()).add(target)
            if function is not None:
                inner.append((name, line, function, target))
    return found, edges, inner


def test_only_apps_ready_imports_inside_a_function():
    _, _, inner = graph()
    assert [entry for entry in inner if entry[:1] != ("apps",) or entry[2] != "ready"] == []


def test_every_import_goes_to_the_same_room_or_an_earlier_one():
    _, edges, _ = graph()
    wrong = [
        f"{source} ({room(source)}) imports {target} ({room(target)})"
        for source, targets in edges.items()
        for target in targets
        if ROOMS.index(room(target)) > ROOMS.index(room(source))
    ]
    assert wrong == []


def test_nothing_imports_the_task_entry_points():
    _, edges, _ = graph()
    assert [source for source, targets in edges.items() if "tasks" in targets] == []


def test_there_is_no_import_cycle():
    found, edges, _ = graph()
    seen, stack, cycles = {}, [], []

    def visit(node):
        seen[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if seen.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in seen:
                visit(target)
        stack.pop()
        seen[node] = "done"

    for node in sorted(found):
        if node not in seen:
            visit(node)
    assert cycles == []


def test_the_rule_sees_a_wrong_import():
    """The checks above can fail: an import from a later room is found."""
    assert room("smtp.transport") == "smtp"
    assert ROOMS.index(room("admin.views")) > ROOMS.index(room("setup.live"))
    assert room("queue") == "base"
    assert room("management.commands.icarus_smtp_outbox") == "edge"
