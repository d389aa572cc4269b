"""The package's layout rules (docs/design.md, "Where things live"), read from the source.

- An underscored name is never imported from another module, nor read as an attribute of
  another gridkit module; an underscored module is imported only by modules of its own
  folder.
- No import cycles between modules (imports inside functions count; imports under
  ``if TYPE_CHECKING:`` do not, as they never run).
- Folders import only the folders their row of the design table allows.
- No module is longer than 800 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

import gridkit

PACKAGE = Path(gridkit.__file__).resolve().parent
DESIGN = PACKAGE.parent / "docs" / "design.md"
MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _folder(module: str) -> str:
    """The folder a module lives in: ``gridkit.io.readers`` -> ``gridkit.io``."""
    path = MODULES[module]
    return _module_name(path.parent / "__init__.py") if path.name != "__init__.py" else module


def _stage(module: str) -> str:
    """The top-level stage of a module: ``gridkit.io.readers`` -> ``io``; core modules -> core."""
    parts = module.split(".")
    if len(parts) > 1 and ((PACKAGE / parts[1]).is_dir() or parts[1] == "partition"):
        return parts[1]
    return "core"


class _Imports(ast.NodeVisitor):
    """Every gridkit import of one module: (line, target module, imported name or None)."""

    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.is_package = is_package
        self.found: list[tuple[int, str, str | None, bool]] = []
        self.module_aliases: dict[str, str] = {}
        self.type_checking = 0

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _base(self, node: ast.ImportFrom) -> str | None:
        if not node.level:
            return node.module
        parts = self.module.split(".")
        if not self.is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._base(node)
        if not base or base.split(".")[0] != "gridkit":
            return
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in MODULES:  # a module imported from its package
                self.found.append((node.lineno, full, None, self.type_checking > 0))
                self.module_aliases[alias.asname or alias.name] = full
            else:
                self.found.append((node.lineno, base, alias.name, self.type_checking > 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "gridkit":
                self.found.append((node.lineno, alias.name, None, self.type_checking > 0))
                if alias.asname:
                    self.module_aliases[alias.asname] = alias.name


def _parse(module: str) -> tuple[ast.Module, _Imports]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    visitor = _Imports(module, path.name == "__init__.py")
    visitor.visit(tree)
    return tree, visitor


PARSED = {module: _parse(module) for module in MODULES}


def _violations() -> list[str]:
    found = []
    for module, (tree, imports) in PARSED.items():
        for line, target, name, _ in imports.found:
            where = f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"
            if name is not None and _private(name) and target != module:
                found.append(f"{where}: imports the private name {name} from {target}")
            segments = target.split(".")
            for i, segment in enumerate(segments):
                if _private(segment):
                    home = ".".join(segments[:i])
                    if _folder(module) != home:
                        found.append(
                            f"{where}: imports the private module {target} from outside {home}"
                        )
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imports.module_aliases
                and _private(node.attr)
                and imports.module_aliases[node.value.id] != module
            ):
                found.append(
                    f"{MODULES[module].relative_to(PACKAGE.parent)}:{node.lineno}: reads "
                    f"{imports.module_aliases[node.value.id]}.{node.attr}"
                )
    return found


def _import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module, (_, imports) in PARSED.items():
        for _, target, name, type_only in imports.found:
            if type_only:
                continue
            if name is not None and f"{target}.{name}" in MODULES:
                target = f"{target}.{name}"
            # a package's door runs when any module under it is imported
            while target not in MODULES:
                target = target.rsplit(".", 1)[0]
            if target != module:
                graph.add_edge(module, target)
    return graph


def test_no_private_name_crosses_a_module_boundary():
    assert _violations() == []


def test_no_import_cycles():
    graph = _import_graph()
    # ``gridkit/__init__`` runs before any submodule; the package door imports its stages,
    # which import ``gridkit.x`` (not ``gridkit`` itself) - so the door is not part of cycles
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []


def test_no_module_is_longer_than_800_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def _design_table() -> dict[str, set[str]]:
    """The "Where things live" table of docs/design.md: folder -> the stages it may import."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    table = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        stage = cells[0].strip("`").removeprefix("gridkit/").removesuffix(".py").strip("/")
        stage = "core" if stage.startswith("core") else stage
        allowed = set(re.findall(r"`([a-z_]+)(?:/|\.py)?`", cells[2]))
        if "every folder" in cells[2]:
            allowed |= {_stage(m) for m in MODULES}
        table[stage] = allowed | {stage, "core"}
    return table


def test_design_md_opens_with_where_things_live():
    text = DESIGN.read_text(encoding="utf-8")
    first_section = re.search(r"^## (.+)$", text, re.M)
    assert first_section and first_section.group(1) == "Where things live"
    stages = {_stage(m) for m in MODULES} - {"core"}
    assert stages <= set(_design_table())


def test_folders_import_only_what_the_design_table_allows():
    table = _design_table()
    stray = []
    for module, target in _import_graph().edges:
        if target == "gridkit":
            continue
        source_stage, target_stage = _stage(module), _stage(target)
        if module in ("gridkit", "gridkit.__main__") or target_stage in table[source_stage]:
            continue
        stray.append(f"{module} -> {target}")
    assert stray == []


def test_package_docstring_lists_every_folder():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    doc = gridkit.__doc__ or ""
    assert {f for f in folders if f":mod:`gridkit.{f}`" not in doc} == set()


@pytest.mark.parametrize(
    ("old", "names"),
    [
        ("gridkit.assign", ["assign_workers", "verify_staffing"]),
        ("gridkit.roster", ["read_workers", "make_roster", "write_workers", "normalise_role"]),
        ("gridkit.batch", ["partition_files"]),
        ("gridkit.shard", ["HouseholdFile"]),
        ("gridkit.exchange", ["export_layers", "grids_schema", "shapefile_names"]),
        ("gridkit.audit", ["audit_grids", "read_grids"]),
        ("gridkit.regenerate", ["regenerate"]),
        ("gridkit.scenarios", ["change_sample"]),
        ("gridkit.workbook", ["write_summary_xlsx"]),
        ("gridkit.partition", ["GridRules", "partition_community", "community_budget"]),
        ("gridkit.pipeline", ["make_grids", "GridPlan"]),
        ("gridkit.datasets", ["make_sample", "get_path", "make_point_community"]),
        ("gridkit.maps", ["explore", "html_text"]),
        ("gridkit.export", ["to_geojson", "original_text"]),
        ("gridkit.io", ["read_boundaries", "read_households"]),
        ("gridkit.units", ["build_units"]),
        ("gridkit.adjacency", ["rook_pairs"]),
    ],
)
def test_import_paths_of_the_docs_keep_working(old, names):
    """Paths used in the README, docs and notebooks of the flat layout still import."""
    namespace: dict = {}
    exec(f"from {old} import {', '.join(names)}", namespace)
    assert all(callable(namespace[n]) or namespace[n] is not None for n in names)
