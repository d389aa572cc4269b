"""Packaging and tooling contracts: dependency lists, README, CI entry, console script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import gridkit

REPO = Path(__file__).resolve().parents[1]

#: conda-only entries of environment.yml that are not Python package dependencies.
CONDA_ONLY = {"python", "pip"}


def _name(requirement: str) -> str:
    """Normalised distribution name of a requirement (PEP 503): ``Foo_Bar>=1`` -> ``foo-bar``."""
    name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _spec(requirement: str) -> str:
    """The version part of a requirement, blanks removed: ``foo >= 1.0`` -> ``>=1.0``."""
    return re.sub(r"\s+", "", re.sub(r"^\s*[A-Za-z0-9_.\-]+(\[[^\]]*\])?", "", requirement))


def _parse_environment(text: str) -> dict[str, list[str]]:
    """Dependencies of an environment.yml, grouped by the preceding ``# group`` comment.

    A tiny parser for the subset of YAML that conda environment files use: a top-level
    ``dependencies:`` list of strings, possibly holding a ``- pip:`` sub-list.  Pip
    entries go to the current group as well.
    """
    groups: dict[str, list[str]] = {}
    group = "(none)"
    inside = False
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if not raw.startswith((" ", "\t", "-")) and not stripped.startswith("#"):
            inside = stripped.startswith("dependencies:")
            continue
        if not inside:
            continue
        if stripped.startswith("#"):
            indent = len(line) - len(line.lstrip())
            if indent <= 2:  # a top-level group comment, not a note inside the pip list
                group = stripped.lstrip("#").strip().lower()
            continue
        if stripped.startswith("- "):
            item = stripped[2:].split(" #", 1)[0].strip().strip("'\"")
            if item.endswith(":"):  # "- pip:" opens a sub-list
                continue
            groups.setdefault(group, []).append(item)
    return groups


def _environment() -> dict[str, list[str]]:
    text = (REPO / "environment.yml").read_text(encoding="utf-8")
    groups = _parse_environment(text)
    try:
        import yaml
    except ImportError:
        return groups
    # cross-check the tiny parser against PyYAML when it is installed
    data = yaml.safe_load(text)
    flat = []
    for item in data["dependencies"]:
        flat += item["pip"] if isinstance(item, dict) else [item]
    assert sorted(flat) == sorted(x for g in groups.values() for x in g)
    return groups


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_tiny_yaml_parser():
    text = """\
name: demo
channels:
  - conda-forge
dependencies:
  - python>=3.11
  # required
  - numpy>=1.26  # arrays
  - pip
  - pip:
      # a note inside the pip list
      - eviltransform>=0.1
  # testing
  - pytest>=8
"""
    assert _parse_environment(text) == {
        "(none)": ["python>=3.11"],
        "required": ["numpy>=1.26", "pip", "eviltransform>=0.1"],
        "testing": ["pytest>=8"],
    }


def test_environment_lists_the_pyproject_dependencies():
    project = _pyproject()["project"]
    in_pyproject = [*project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        in_pyproject += extra
    in_env = [x for g in _environment().values() for x in g]
    names_pyproject = {_name(r) for r in in_pyproject}
    names_env = {_name(r) for r in in_env} - CONDA_ONLY
    assert names_env == names_pyproject, {
        "only in environment.yml": sorted(names_env - names_pyproject),
        "only in pyproject.toml": sorted(names_pyproject - names_env),
    }


def test_environment_required_group_and_bounds_match():
    """The ``# required`` group is pyproject's dependencies, with the same lower bounds."""
    project = _pyproject()["project"]
    groups = _environment()
    required = {_name(r): _spec(r) for r in project["dependencies"]}
    env_required = {_name(r): _spec(r) for r in groups.get("required", [])}
    assert env_required == required
    everything = {_name(r): _spec(r) for g in groups.values() for r in g}
    for extra in project.get("optional-dependencies", {}).values():
        for r in extra:
            assert everything.get(_name(r)) == _spec(r), r


def test_readme_starts_with_make_demo_and_make_test():
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    text = readme.read_text(encoding="utf-8")
    # the opening part: up to the second heading
    headings = [m.start() for m in re.finditer(r"^#{1,6} ", text, flags=re.MULTILINE)]
    opening = text[: headings[1]] if len(headings) > 1 else text
    commands = re.findall(r"^\s*(?:\$\s*)?make\s+([\w-]+)", opening, flags=re.MULTILINE)
    commands += re.findall(r"`make\s+([\w-]+)`", opening) if len(commands) < 2 else []
    assert commands[:2] == ["demo", "test"], opening[:1000]
    # exactly two: the first code block holds these two commands and nothing else
    block = re.search(r"```\w*\n(.*?)```", text, flags=re.DOTALL)
    if block and block.start() < (headings[0] if headings else len(text)):
        lines = [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines()]
        assert [ln for ln in lines if ln] == ["make demo", "make test"], block.group(1)


def test_ci_entry_runs_make_test():
    run = REPO / ".ci" / "run"
    text = run.read_text(encoding="utf-8")
    assert text.startswith("#!")
    assert os.access(run, os.X_OK), ".ci/run is not executable"
    commands = [
        line.split("#", 1)[0].strip() for line in text.splitlines() if not line.startswith("#")
    ]
    assert "make test" in commands


def test_makefile_targets():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    assert {"demo", "test"} <= targets
    # the demo partitions the bundled sample files
    for path in re.findall(r"data/boundaries/[\w.]+", makefile):
        assert (REPO / path).is_file(), path


def _gridkit_script() -> Path:
    script = Path(sys.executable).parent / "gridkit"
    if not script.exists():
        pytest.fail(f"console script {script} missing: reinstall with `pip install -e .`")
    return script


def test_console_script_version():
    proc = subprocess.run(
        [str(_gridkit_script()), "--version"], capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"gridkit {gridkit.__version__}"


def test_entry_point_and_version_metadata():
    scripts = metadata.entry_points(group="console_scripts")
    (entry,) = [e for e in scripts if e.name == "gridkit"]
    assert entry.value == "gridkit.cli:main"
    assert _pyproject()["project"]["scripts"]["gridkit"] == "gridkit.cli:main"
    assert metadata.version("gridkit") == gridkit.__version__ == _pyproject()["project"]["version"]
