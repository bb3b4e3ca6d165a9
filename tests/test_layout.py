"""The tree shows the architecture, and stays that way: what the README promises, checked.

The layers themselves are import-linter's contract (`pyproject.toml`, `make lint`); here: the
root holds only the shared vocabulary, packages stay small, modules and functions stay short,
SQL lives in `storage/` and `reporting/` only, and the README's architecture table names every
package there is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "botlib"
VOCABULARY = {"__init__", "__main__", "models", "errors", "ports", "clock", "redact"}
MAX_MODULES, MAX_LINES, MAX_FUNCTION = 10, 400, 50
SQL_HOMES = {"storage", "reporting"}
_SQL = re.compile(
    r"^\s*(SELECT\s.*\sFROM\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
    r"|PRAGMA\s+\w|WITH\s+\w+\s+AS\s)",
    re.DOTALL,
)
_RAW = {"execute", "query", "table", "executemany"}  # sqlite-utils / sqlite3 calls on `.db`


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def packages() -> list[Path]:
    return sorted({p.parent for p in modules() if p.parent != PACKAGE})


def test_the_root_holds_only_the_vocabulary() -> None:
    assert {p.stem for p in PACKAGE.glob("*.py")} == VOCABULARY


@pytest.mark.parametrize("package", packages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_package_holds_at_most_ten_modules(package: Path) -> None:
    own = [p for p in package.glob("*.py") if p.name != "__init__.py"]
    assert 0 < len(own) <= MAX_MODULES, [p.name for p in own]
    assert (package / "__init__.py").read_text().startswith('"""'), "say what the package is"


def test_modules_and_functions_stay_short() -> None:
    long = []
    for path in modules():
        source = path.read_text()
        if len(source.splitlines()) > MAX_LINES:
            long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > MAX_FUNCTION + 1:
                    long.append(f"{path.relative_to(ROOT)}:{node.name}: {size} lines")
    assert long == []


def sql_outside_its_homes(path: Path) -> list[str]:
    """SQL text, or a raw `.db.<call>`, in a module that is not storage or the read side."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SQL.match(node.value):
                found.append(f"line {node.lineno}: {node.value.strip()[:40]!r}")
        elif isinstance(node, ast.Attribute) and node.attr in _RAW:
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr == "db":
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_sql_lives_in_storage_and_the_read_side_only() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in modules()
        if path.relative_to(PACKAGE).parts[0] not in SQL_HOMES
        and (found := sql_outside_its_homes(path))
    }
    assert offenders == {}


def test_the_sql_check_sees_sql(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'store.rows("SELECT 1 FROM cycles")\nstore.db.execute("x")\nprint("selected 1 row")\n'
    )
    assert [line.split(":")[0] for line in sql_outside_its_homes(sample)] == ["line 1", "line 2"]


def test_the_readme_architecture_names_every_package() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(botlib/[a-z_/]+?)/?`", section))
    tree = {str(p.relative_to(ROOT)) for p in packages()}
    assert tree <= named, f"packages missing from the README: {sorted(tree - named)}"
    stale = {n for n in named if not (ROOT / n).exists() and not (ROOT / f"{n}.py").exists()}
    assert stale == set(), f"the README names what is not there: {sorted(stale)}"
