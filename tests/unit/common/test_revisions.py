"""The head revision read without Alembic must be the one Alembic itself finds, or none."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from heron_common.db.revisions import head_revision

REPO = Path(__file__).resolve().parents[3]
FOLDERS = sorted(REPO.glob("services/*/heron_*/migrations"))


def _alembic_heads(folder: Path) -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(folder))
    return list(ScriptDirectory.from_config(config).get_heads())


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.parent.name)
def test_each_service_head_is_alembics(folder: Path) -> None:
    assert _alembic_heads(folder) == [head_revision(folder)]


def _migration(folder: Path, name: str, body: str) -> None:
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "versions" / f"{name}.py").write_text(body)


def test_a_linear_history_has_its_last_revision_as_head(tmp_path: Path) -> None:
    _migration(tmp_path, "a", 'revision = "a"\ndown_revision = None\n')
    _migration(tmp_path, "b", 'revision = "b"\ndown_revision = "a"\n')
    _migration(tmp_path, "c", 'revision: str = "c"\ndown_revision: str | None = "b"\n')
    assert head_revision(tmp_path) == "c"


def test_a_merge_revision_closes_both_branches(tmp_path: Path) -> None:
    _migration(tmp_path, "a", 'revision = "a"\ndown_revision = None\n')
    _migration(tmp_path, "b", 'revision = "b"\ndown_revision = "a"\n')
    _migration(tmp_path, "c", 'revision = "c"\ndown_revision = "a"\n')
    assert head_revision(tmp_path) is None  # two heads: Alembic decides
    _migration(tmp_path, "d", 'revision = "d"\ndown_revision = ("b", "c")\n')
    assert head_revision(tmp_path) == "d"


@pytest.mark.parametrize(
    "body",
    [
        "down_revision = None\n",  # no revision
        "revision = make_id()\ndown_revision = None\n",  # not a literal
        'revision = "x"\ndown_revision = 3\n',
        "revision = (\n",  # not Python
    ],
)
def test_a_file_it_cannot_read_leaves_the_decision_to_alembic(tmp_path: Path, body: str) -> None:
    _migration(tmp_path, "a", 'revision = "a"\ndown_revision = None\n')
    _migration(tmp_path, "b", body)
    assert head_revision(tmp_path) is None
