"""The package's layers, read from its source with ``ast``: no import circle (function-level
imports count), and no library module imports the command layer (fmer.cli)."""

import ast
from pathlib import Path

import fmer

COMMANDS = "fmer.cli"
ROOT = Path(fmer.__file__).parent


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path) -> dict[str, set[str]]:
    """Each module of the package at ``root`` -> the package's modules it imports, anywhere in
    its body. ``from P import x`` is module ``P.x`` where that is a module, else ``P``."""
    modules = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    package = root.name
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            else:
                continue
            found |= {t for t in targets if t == package or t.startswith(package + ".")}
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one
    module (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circle():
    assert cycles(imports(ROOT)) == []


def test_no_library_module_imports_the_command_layer():
    def is_command(name):
        return name == COMMANDS or name.startswith(COMMANDS + ".")

    upward = {m: sorted(filter(is_command, targets)) for m, targets in imports(ROOT).items()
              if not is_command(m) and m != "fmer.__main__"}
    assert {m: t for m, t in upward.items() if t} == {}


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from pkg.sub import high\n    return high\n")
    (pkg / "sub" / "high.py").write_text("import pkg.mid\n")
    (pkg / "mid.py").write_text("from pkg import low\nimport os\n")
    (pkg / "leaf.py").write_text("from pkg.low import f\n")
    graph = imports(pkg)
    assert graph["pkg.leaf"] == {"pkg.low"}
    assert cycles(graph) == [["pkg.low", "pkg.mid", "pkg.sub.high"]]
