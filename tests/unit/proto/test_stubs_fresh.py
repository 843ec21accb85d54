"""The committed gRPC stubs match what the .proto files generate today."""

from __future__ import annotations

import filecmp
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "proto" / "generated"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> set[Path]:
    return {
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_stubs_are_fresh(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    if not (Path(sys.executable).parent / "protoc-gen-mypy").exists():
        pytest.fail("mypy-protobuf is missing from the environment; run `make test` to sync")
    out = tmp_path / "generated"
    _load_generator().generate(out)
    committed, fresh = _files(GENERATED), _files(out)
    assert committed == fresh, "stub files differ: run `make proto` and commit"
    stale = [
        str(p) for p in sorted(fresh) if not filecmp.cmp(GENERATED / p, out / p, shallow=False)
    ]
    assert not stale, f"stale stubs {stale}: run `make proto` and commit"
