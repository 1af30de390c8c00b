"""Facts written once: the version and the pinned set live in pyproject.toml; the package and
environment.yml follow it."""

import tomllib
from pathlib import Path

import pytest
import yaml

from fmer.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_fmer_version_is_pyprojects(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"fmer {PROJECT['version']}"


def test_environment_yml_pins_what_pyproject_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    # the package itself, editable, and the test extra, as `make venv` installs them
    expected = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["test"], "-e ."]
    assert sorted(pip) == sorted(expected)
