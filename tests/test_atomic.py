"""atomic_write: the old file or the new one, never half of one, and no temporary left."""

import pytest

from tinyprune.files import atomic_write


def test_success_replaces_the_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with atomic_write(path) as tmp:
        tmp.write_text("new")
        assert path.read_text() == "old"  # not visible until the block ends
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, error):
    path = tmp_path / "a.json"
    path.write_text("old")
    with pytest.raises(type(error)):
        with atomic_write(path) as tmp:
            tmp.write_text("half")
            raise error
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
