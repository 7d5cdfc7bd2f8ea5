"""The shape the code keeps (docs/architecture.md): small modules, short functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# The simulated API server is a test and demo tool with long request handlers of its own.
FUNCTIONS_UNBOUNDED_IN = ("apps/simcluster/",)


def python_modules() -> list[Path]:
    found = [*ROOT.glob("apps/**/*.py"), *ROOT.glob("portal/**/*.py")]
    return sorted(path for path in found if "migrations" not in path.parts)


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_module_over_500_lines_and_no_function_over_80() -> None:
    modules = python_modules()
    too_long = []
    for path in modules:
        name = str(path.relative_to(ROOT))
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines (split it by topic into a package)")
        if not name.startswith(FUNCTIONS_UNBOUNDED_IN):
            too_long += [f"{name}: {function}" for function in long_functions(path)]
    assert len(modules) > 100  # the walk found the code
    assert too_long == []
