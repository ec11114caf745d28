"""The loader: the shared copy verifies, and every way of not having the right file says what to do."""

from __future__ import annotations

import shutil

import pytest

from attrition.contract.schema import DROPPED_COLUMNS, FEATURES, RAW_COLUMNS, TARGET
from attrition.training import data

pytestmark = pytest.mark.unit


def test_loads_the_shared_copy():
    features, target = data.load()
    assert features.shape == (1470, 30)
    assert list(features.columns) == list(FEATURES)
    assert target.sum() == 237  # "Yes" rows in the IBM file
    assert set(RAW_COLUMNS) - set(FEATURES) == {TARGET, *DROPPED_COLUMNS}


def test_argument_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    shared = data.data_dir()
    assert shared == tmp_path / "nowhere"
    assert data.data_dir(tmp_path) == tmp_path


def test_missing_file_without_network_says_where_to_put_it(tmp_path, monkeypatch):
    # No network here and in CI: the download fails and the error names the folder and the variable.
    monkeypatch.setattr(data, "URL", "http://127.0.0.1:9/unreachable.csv")
    with pytest.raises(data.DataError) as error:
        data.load(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and data.FILENAME in message and data.DATA_DIR_ENV in message


def test_hash_mismatch_is_refused(tmp_path):
    source = data.fetch()
    (tmp_path / data.FILENAME).write_bytes(
        source.read_bytes().replace(b"Sales Executive", b"Sales Executivf", 1)
    )
    with pytest.raises(data.DataError, match="SHA-256"):
        data.load(tmp_path)


def test_wrong_columns_are_refused(tmp_path, monkeypatch):
    shutil.copy(data.fetch(), tmp_path / data.FILENAME)
    monkeypatch.setattr(data, "RAW_COLUMNS", (*RAW_COLUMNS, "Salary"))
    with pytest.raises(data.DataError, match="missing \\['Salary'\\]"):
        data.load_raw(tmp_path)
