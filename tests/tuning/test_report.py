"""The oracle file's last good copy: kept after each save, restored when a kill cut it off."""

import json

from tuning import report


def test_a_cut_off_oracle_file_is_restored_from_the_last_good_copy(tmp_path):
    good = json.dumps({"ongoing_trials": {"tuner0": "02"}, "start_order": ["00", "01", "02"]})
    (tmp_path / report.ORACLE).write_text(good)
    report.backup_oracle(tmp_path)
    (tmp_path / report.ORACLE).write_text(good[: len(good) // 2])  # killed mid-write
    report.backup_oracle(tmp_path)  # an unreadable file never replaces the good copy
    assert report.restore_oracle(tmp_path) is True
    assert json.loads((tmp_path / report.ORACLE).read_text())["ongoing_trials"] == {
        "tuner0": "02"}


def test_a_readable_oracle_file_is_left_alone(tmp_path):
    (tmp_path / report.ORACLE).write_text('{"start_order": ["00"]}')
    report.backup_oracle(tmp_path)
    (tmp_path / report.ORACLE).write_text('{"start_order": ["00", "01"]}')
    assert report.restore_oracle(tmp_path) is False
    assert json.loads((tmp_path / report.ORACLE).read_text())["start_order"] == ["00", "01"]


def test_no_copy_no_restore(tmp_path):
    (tmp_path / report.ORACLE).write_text("{")
    assert report.restore_oracle(tmp_path) is False
    assert not (tmp_path / report.BACKUP).exists()
