"""Every command the README shows must exist with the options it shows."""

import shlex

import pytest

from botlib.app.cli import _parser
from tests.conftest import ROOT

LINES = [
    line.split("#")[0].strip()
    for line in (ROOT / "README.md").read_text().splitlines()
    if line.strip().startswith(".venv/bin/botlib ")
]


def test_the_readme_shows_commands() -> None:
    assert len(LINES) >= 8


@pytest.mark.parametrize("line", LINES)
def test_readme_command_parses(line: str) -> None:
    args = _parser().parse_args(shlex.split(line)[1:])
    assert args.command == shlex.split(line)[1]


def test_make_targets_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:"):
        assert f"\n{target}" in makefile


def test_every_setting_is_documented() -> None:
    from botlib.app.config import Settings

    readme = (ROOT / "README.md").read_text()
    names = [
        field.validation_alias.choices[0]  # type: ignore[union-attr]
        for field in Settings.model_fields.values()
    ]
    assert len(names) > 25
    assert [name for name in names if f"`{name}`" not in readme] == []
