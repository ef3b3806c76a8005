"""The house stays in order: the import graph over composer/ has no cycle between packages, a
stage imports only what comes before it in the pipeline (and the shared floor below the stages),
nothing the pipeline runs imports training code, and files stay readable in size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "composer"
# The floor every stage may use, then the stages in pipeline order, then what runs them.
FLOOR = ["errors", "progress", "config", "paths", "outputs", "process", "types", "music",
         "tokens"]  # fmt: skip
STAGES = ["video", "describe", "plan", "retrieve", "model", "arrange", "perform", "render",
          "edit"]  # fmt: skip
RUNNERS = ["pipeline", "demo", "doctor", "train", "evaluate", "bench", "cli_measure", "cli_train",
           "cli", "__main__"]  # fmt: skip


def unit(module: str) -> str:
    """The package a module belongs to: composer.model.decode -> model; composer.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> dict[str, set[str]]:
    """unit -> the units its modules import (at the top or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        targets = graph.setdefault(unit(module), set())
        for node in _runtime_nodes(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("composer.") and unit(name) != unit(module):
                    targets.add(unit(name))
    return graph


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                continue
            todo.append(child)


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as a path, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_cycle_between_packages():
    graph = imports()
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_each_layer_imports_only_what_is_below_it():
    order = FLOOR + STAGES + RUNNERS
    rank = {name: i for i, name in enumerate(order)}
    graph = imports()
    assert set(graph) - {"__init__"} <= set(rank), set(graph) - set(rank)
    wrong = []
    for source, targets in graph.items():
        if source == "__init__":
            continue  # the public API re-exports every stage
        for target in targets:
            if target == "__init__" or rank[target] > rank[source]:
                # The floor is ordered too (types before music); a runner never imported.
                wrong.append(f"{source} -> {target}")
    assert wrong == []


def test_composing_a_text_request_imports_no_training_code(tiny_checkpoint, tmp_path):
    code = (
        "import sys\n"
        "from composer import compose\n"
        f"compose(None, 'a calm folk tune', {str(tmp_path / 'out')!r}, duration=4,"
        f" model={str(tiny_checkpoint)!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith('composer.train')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_long_files_say_why_they_are_one_thing():
    """A module over 500 lines says in its docstring why it is not two."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 500:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "one module" in doc or "one file" in doc, path


def test_the_eval_scripts_import_what_exists():
    """evals/ scripts run rarely: a name that moved in the package must not break them."""
    import ast
    import importlib

    missing = []
    for script in sorted((ROOT / "evals").rglob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("composer"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name) and not _submodule(node.module, alias.name):
                        missing.append(f"{script.name}: {node.module}.{alias.name}")
    assert missing == []


def _submodule(package: str, name: str) -> bool:
    import importlib

    try:
        importlib.import_module(f"{package}.{name}")
    except ImportError:
        return False
    return True
