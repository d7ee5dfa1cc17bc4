"""The hand-written stubs (`_nol.pyi`) and the native module do not drift apart: every public
name, method and attribute of one is in the other, and every item has a docstring."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import nol
from nol import _nol

STUB = Path(__file__).resolve().parents[1] / "python" / "nol" / "_nol.pyi"


def stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    top: set[str] = set()
    members: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.add(node.name)
            members[node.name] = {
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
        elif isinstance(node, ast.FunctionDef):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
        elif isinstance(node, ast.Assign):
            top.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return top, members


def public(obj) -> set[str]:
    return {n for n in vars(obj) if not n.startswith("_")}


def test_every_native_name_is_in_the_stub_and_back() -> None:
    top, _ = stub_names()
    native = {n for n in vars(_nol) if not n.startswith("_")} | {"__version__"}
    assert native == {n for n in top if not n.startswith("_") or n == "__version__"}


def test_every_class_member_is_in_the_stub_and_back() -> None:
    _, members = stub_names()
    for name, declared in members.items():
        cls = getattr(_nol, name)
        if issubclass(cls, BaseException):
            continue
        runtime = public(cls)
        assert runtime == {m for m in declared if not m.startswith("_")}, name


def test_the_package_exports_everything_documented() -> None:
    for name in nol.__all__:
        obj = getattr(nol, name)
        if name != "__version__":
            assert inspect.getdoc(obj), f"{name} has no docstring"
    for cls in (
        nol.Client,
        nol.AsyncClient,
        nol.Decision,
        nol.Stats,
        nol.Precall,
        nol.Enrollment,
        nol.Stir,
        nol.Policy,
        nol.TrustedKeys,
    ):
        for member in public(cls):
            assert inspect.getdoc(getattr(cls, member)), f"{cls.__name__}.{member}"
