"""The code's shape: layers import downward, each fact has one owner, modules stay small."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "cas_dvid"
MODULES = sorted(PACKAGE.rglob("*.py"))
RANK = {
    "backends": 1,
    "objects": 2,
    "trees": 3,
    "versions": 4,
    "datatypes": 5,
    "sync": 5,
    "batch": 6,
    "api": 6,
    "cli": 7,
}
REF_NAMES = (
    "repos/",
    "uuids/",
    "heads/",
    "published/",
    "gc/last",
    "sync/incomplete",
    "labels/",
    "mutations/",
)


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def layer(parts: list[str]) -> str | None:
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return [n for n in out if n.startswith("cas_dvid")]


def string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def definitions(kind: type[ast.AST]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, kind):
                found.setdefault(node.name, []).append(rel(path))  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_imports_run_downward(path: Path) -> None:
    mine = layer(list(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    if mine is None:
        return
    for name in imports(path):
        other = layer(name.split("."))
        assert other is None or RANK[other] <= RANK[mine], f"{rel(path)} imports {name}"


def test_api_does_not_import_sync() -> None:
    bad = [
        (rel(p), n)
        for p in MODULES
        if rel(p).startswith("cas_dvid/api/")
        for n in imports(p)
        if n.startswith("cas_dvid.sync")
    ]
    assert bad == []


def test_batch_does_not_import_api_or_cli() -> None:
    bad = [
        (rel(p), n)
        for p in MODULES
        if rel(p).startswith("cas_dvid/batch/")
        for n in imports(p)
        if n.startswith(("cas_dvid.api", "cas_dvid.cli"))
    ]
    assert bad == []


def test_every_ref_name_is_spelled_in_refs_only() -> None:
    owner = "cas_dvid/versions/refs.py"
    spelled = [
        (rel(p), s)
        for p in MODULES
        if rel(p) != owner and not rel(p).startswith("cas_dvid/testing/")
        for s in string_constants(p)
        if any(s.startswith(r) for r in REF_NAMES)
    ]
    assert spelled == []


def test_one_box_type_one_block_size_parser() -> None:
    classes = definitions(ast.ClassDef)
    boxes = {name: where for name, where in classes.items() if re.fullmatch(r"Box\d*", name)}
    assert boxes == {"Box3": ["cas_dvid/datatypes/geometry.py"]}
    funcs = definitions(ast.FunctionDef)
    assert funcs["parse_block_size"] == ["cas_dvid/datatypes/geometry.py"]
    assert funcs["parse_box"] == ["cas_dvid/datatypes/geometry.py"]


def test_each_block_key_class_has_one_owner() -> None:
    assigned: dict[str, list[str]] = {}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.endswith("_CLASS"):
                        key = repr(node.value.value)
                        assigned.setdefault(key, []).append(rel(path))
    assert {k: v for k, v in assigned.items() if len(v) > 1} == {}


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_modules_stay_under_500_lines(path: Path) -> None:
    if "_pb2" in path.name:
        return  # generated protobuf code
    assert len(path.read_text().splitlines()) <= 500
