"""Names that become paths cannot leave their root; where label sets are read and written; DataError."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.datasets import index_oem
from datamodules.errors import DataError
from datamodules.layout import UnsafeNameError, check_name, label_folder, pseudo_label_dirs

UNSAFE = {
    "..": "starts with '.'",
    "../../x": "starts with '.'",
    "a/../../x": "holds a path separator",
    "/etc/x": "holds a path separator",
    "a\\b": "holds a path separator",
    ".hidden": "starts with '.'",
    "": "is empty",
    "a\nb": "holds a control character",
}


@pytest.mark.parametrize("name", list(UNSAFE), ids=repr)
def test_names_that_could_leave_their_folder_are_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError, match=f"set name {UNSAFE[name]}") as error:
        check_name(name, "set name")
    assert str(error.value).startswith(repr(name))  # the error names the name


def test_plain_names_pass_unchanged() -> None:
    for name in ("stage1", "demo-mt_raa.v2", "aachen_12.tif", "TrainArea_001.tif", "a b"):
        assert check_name(name, "name") == name


def test_label_sets_are_read_and_written_inside_the_data_root(tmp_path: Path) -> None:
    train = tmp_path / "OpenEarthMap-SAR" / "train"
    (train / "labels_truth").mkdir(parents=True)
    assert label_folder(tmp_path, "train", "labels_truth") == train / "labels_truth"
    assert pseudo_label_dirs(tmp_path, "mt") == (train / "labels_pl" / "mt", train / "labels_pl_soft" / "mt")
    with pytest.raises(UnsafeNameError, match="label-set name"):
        label_folder(tmp_path, "train", "../../x")
    with pytest.raises(UnsafeNameError, match="split name"):
        label_folder(tmp_path, "../train", "official")
    for taken in ("official", "labels_truth"):  # read from another folder than the one it would be written to
        with pytest.raises(UnsafeNameError, match="taken by the data's own folder"):
            pseudo_label_dirs(tmp_path, taken)


def test_a_split_file_naming_a_path_outside_the_data_root_is_an_error_naming_the_file(tmp_path: Path) -> None:
    oem = tmp_path / "OpenEarthMap"
    oem.mkdir()
    (oem / "train.txt").write_text("aachen_1.tif\n../../../etc/passwd_1.tif\n")
    with pytest.raises(DataError, match=r"train\.txt: lists '\.\./\.\./\.\./etc/passwd_1\.tif': tile name"):
        index_oem(tmp_path, ["train"])


class _Broken(Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> torch.Tensor:
        raise DataError("/data/x.tif", "has 3 band(s), expected 1")


def test_a_data_error_from_a_loader_worker_keeps_its_path_and_one_line() -> None:
    with pytest.raises(DataError) as error:
        next(iter(DataLoader(_Broken(), num_workers=1)))
    assert str(error.value) == "/data/x.tif: has 3 band(s), expected 1"
    assert error.value.path == Path("/data/x.tif") and error.value.problem == "has 3 band(s), expected 1"
