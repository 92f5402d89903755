"""The code stays navigable: small modules, a short run loop, structure in fields not strings."""

import ast
import re
from pathlib import Path

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"
MODULES = sorted(PIPELINE.rglob("*.py"))


def test_no_module_over_500_lines():
    """An alarm for a module that has grown into several, not a length to squeeze code to: modules
    are as long as their one subject needs (a Kconfig reader, a thread reader run to 300-460)."""
    long = {str(p.relative_to(PIPELINE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_the_run_loop_has_no_function_over_60_lines():
    long = []
    for path in sorted((PIPELINE / "run").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def test_only_the_lane_model_spells_the_base_prefix():
    """Code (not comments or docstrings) outside model/lane.py never writes "base-"."""
    found = []
    for path in MODULES:
        if path.name == "lane.py":
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef,
                ast.ClassDef)) and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                    and node.value.endswith("base-"):
                found.append(f"{path.relative_to(PIPELINE)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_no_reporter_parses_a_case_name():
    """Reporters read Case fields; a regex or split over .name would be structure parsed back out."""
    bad = []
    for path in sorted((PIPELINE / "report").glob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.name\b.*\.(split|startswith|removeprefix)\(|re\.\w+\([^)]*\.name\b", line):
                bad.append(f"{path.name}:{i}: {line.strip()}")
    assert bad == []
