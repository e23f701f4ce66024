"""The package's shape: layers import only downward, no cycles, no toolchain import hidden inside a function,
no module reaching into another's private names, and each fact that two files must agree on checked here."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from toolchain.core.config import REPO_ROOT

# Lowest first; a module may import its own layer and those before it.
LAYERS = ("core", "build", "package", "runtimes", "measure", "pipeline", "release")
SCRIPTS = ("hosts",)  # run as programs in other venvs: they import nothing of the toolchain


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def toolchain_imports(tree: ast.Module, known: set[str]) -> list[tuple[str, bool, int]]:
    """(imported module, at module top level?, line) for every import of a module in ``known``."""
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        for name in names:
            if name in known:
                found.append((name, id(node) in top, node.lineno))
    return found


def import_problems(root: Path, package: str = "toolchain") -> list[str]:
    """Every layering problem in ``root/package``: upward imports, imports inside functions, cycles."""
    paths = {module_name(root, p): p for p in sorted((root / package).rglob("*.py"))}
    known = set(paths)
    graph: dict[str, set[str]] = {m: set() for m in paths}
    problems = []
    for mod, path in paths.items():
        layer = layer_of(mod)
        for target, at_top, line in toolchain_imports(ast.parse(path.read_text()), known):
            if target == mod or target == package:
                continue
            where = f"{path.relative_to(root)}:{line}"
            graph[mod].add(target)
            if layer in SCRIPTS:
                problems.append(f"{where}: {mod} is a script run elsewhere and imports {target}")
                continue
            if not at_top:
                problems.append(f"{where}: {mod} imports {target} inside a function")
            tl = layer_of(target)
            if layer in LAYERS and tl in LAYERS and LAYERS.index(tl) > LAYERS.index(layer):
                problems.append(f"{where}: {mod} ({layer}) imports {target} from the higher layer {tl}")
            elif layer in LAYERS and tl not in LAYERS:
                problems.append(f"{where}: {mod} imports {target}, which is in no layer")
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_layers_import_only_downward_without_cycles():
    assert import_problems(REPO_ROOT) == []


def test_the_check_catches_a_cycle_an_upward_import_and_a_hidden_import(tmp_path: Path):
    """The shape main had before the layers: build ↔ package through a function-level import, and a cycle."""
    pkg = tmp_path / "toolchain"
    for sub in ("core", "build", "package"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "build" / "guest.py").write_text("from toolchain.package.manifest import Artifact\n")
    (pkg / "package" / "manifest.py").write_text("def f():\n    from toolchain.build import guest\n")
    problems = import_problems(tmp_path)
    assert any("from the higher layer package" in p for p in problems), problems
    assert any("inside a function" in p for p in problems), problems
    assert any(p.startswith("import cycle:") and "toolchain.build.guest" in p for p in problems), problems


def test_no_module_touches_another_modules_private_names():
    """``x._name`` only on ``self`` or ``cls``: what another module needs is a public name."""
    offenders = []
    for path in sorted((REPO_ROOT / "toolchain").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolchain"):
                offenders += [
                    f"{path.relative_to(REPO_ROOT)}:{node.lineno}: imports {a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert not offenders, offenders


def test_results_schema_lists_exactly_the_runtime_registry():
    from toolchain.runtimes import runtime_names

    schema = json.loads((REPO_ROOT / "schemas" / "bench-results.schema.json").read_text())
    assert sorted(schema["$defs"]["runtime_name"]["enum"]) == sorted(runtime_names())


def test_the_wasmtime_version_agrees_across_python_and_rust():
    """One .cwasm loads in the Python package and in the Rust host only when both are the same wasmtime: the
    version is pinned in three files of two languages, so they are compared here."""
    import tomllib

    from toolchain.core.catalog import HOST_AOT_TARGET, aot_target

    version = aot_target(HOST_AOT_TARGET).version
    host = tomllib.loads((REPO_ROOT / "guest" / "host" / "Cargo.toml").read_text())["dependencies"]
    assert {name: host[name]["version"] for name in ("wasmtime", "wasmtime-wasi", "wasmtime-wizer")} == dict.fromkeys(
        ("wasmtime", "wasmtime-wasi", "wasmtime-wizer"), f"={version}"
    )
    assert f"\nwasmtime=={version} \\" in (REPO_ROOT / "requirements.lock").read_text()
