"""Regenerate the Python stubs in proto/generated/ from the .proto files (deletes and rewrites)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
SOURCE_PACKAGE = PROTO_ROOT / "cms"


def proto_files() -> list[Path]:
    return sorted(SOURCE_PACKAGE.rglob("*.proto"))


def generate(out: Path) -> None:
    """Write the stubs for every .proto under proto/cms into `out`, replacing what was there."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    include = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for directory in (d for d in out.rglob("*") if d.is_dir()):
        (directory / "__init__.py").touch()
    (out / "cms" / "py.typed").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_ROOT / "generated")
    args = parser.parse_args()
    generate(args.out)
    print(f"generated stubs for {len(proto_files())} proto file(s) in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
