"""The output rule: marks and records, inputs, data roots, resolved paths, leftovers of killed runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datamodules.output_safety import (
    FILE_RECORDS,
    FOLDER_MARK,
    HOST,
    Output,
    OutputRefusedError,
    check_outputs,
    partial_file,
    record_file,
    remove_leftovers,
)
from datamodules.rasters import atomic_output_dir, write_raster


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def data_root(folder: Path, generated: bool = False) -> Path:
    """A minimal data root: one SAR tile, one label, an existing pseudo-label set."""
    train = folder / "OpenEarthMap-SAR" / "train"
    for sub in ("sar_images", "labels", "labels_pl/old"):
        (train / sub).mkdir(parents=True)
        (train / sub / "T_1.tif").write_bytes(b"tile")
    if generated:
        (folder / "SYNTHETIC.json").write_text("{}")
    return folder


def test_a_new_or_empty_folder_is_claimed_and_marked_a_foreign_one_refused(tmp_path: Path) -> None:
    new, empty, foreign = tmp_path / "a" / "new", tmp_path / "empty", tmp_path / "foreign"
    empty.mkdir()
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    check_outputs("fit", [Output(new), Output(empty)])
    assert (new / FOLDER_MARK).is_file() and (empty / FOLDER_MARK).is_file()
    assert (tmp_path / "a" / FOLDER_MARK).is_file()  # a parent the project created is its own too
    assert json.loads((new / FOLDER_MARK).read_text())["command"] == "fit"
    (new / "config.yaml").write_text("x")
    check_outputs("fit", [Output(new)])  # marked: the project writes into it again
    with pytest.raises(OutputRefusedError, match=r"foreign: refused as out: the folder holds files sar-landcover"):
        check_outputs("fit", [Output(foreign, option="out")])
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_a_replaced_folder_must_hold_only_the_files_its_mark_lists(tmp_path: Path) -> None:
    out = tmp_path / "submission"
    with atomic_output_dir(out, "submit") as tmp:
        (tmp / "a.png").write_bytes(b"a")
    assert json.loads((out / FOLDER_MARK).read_text())["files"] == ["a.png"]
    with atomic_output_dir(out, "submit") as tmp:  # an earlier submission is replaced as a whole
        (tmp / "b.png").write_bytes(b"b")
    assert sorted(p.name for p in out.iterdir()) == [FOLDER_MARK, "b.png"]
    (out / "mine.txt").write_text("mine")
    refused = pytest.raises(OutputRefusedError, match=r"holds 'mine\.txt', which sar-landcover did not write there")
    with refused, atomic_output_dir(out, "submit"):
        pass
    appended = tmp_path / "runs"
    check_outputs("fit", [Output(appended)])
    (appended / "config.yaml").write_text("x")
    with pytest.raises(OutputRefusedError, match=r"holds 'config\.yaml'"):  # marked, but not as a whole
        check_outputs("submit", [Output(appended, "replaced_folder")])


def test_a_file_is_replaced_only_while_it_is_as_the_project_wrote_it(tmp_path: Path) -> None:
    out = tmp_path / "map.tif"
    check_outputs("map", [Output(out, "file")])  # missing: fine
    out.write_bytes(b"a map")
    with pytest.raises(OutputRefusedError, match="the file exists and sar-landcover did not write it"):
        check_outputs("map", [Output(out, "file")])
    record_file(out, "map")
    check_outputs("map", [Output(out, "file")])
    out.write_bytes(b"edited by hand, longer")
    with pytest.raises(OutputRefusedError, match="or it changed since"):
        check_outputs("map", [Output(out, "file")])
    with pytest.raises(OutputRefusedError, match="it is a folder; name a file"):
        check_outputs("map", [Output(tmp_path, "file", "--output")])
    with pytest.raises(OutputRefusedError, match="kept for the project's own records"):
        check_outputs("map", [Output(tmp_path / FILE_RECORDS, "file")])
    assert not (tmp_path / FOLDER_MARK).exists()  # a file's existing folder is not claimed


def test_inputs_folders_holding_them_and_folders_inside_them_are_refused(tmp_path: Path) -> None:
    scene, sar_dir = tmp_path / "scenes" / "scene.tif", tmp_path / "sar"
    scene.parent.mkdir()
    scene.write_bytes(b"scene")
    sar_dir.mkdir()
    cases = {
        "it is an input of this command": Output(scene, "file"),
        r"it holds the input .*scene\.tif": Output(tmp_path / "scenes", "replaced_folder"),
        "it lies inside the input folder": Output(sar_dir / "out", "replaced_folder"),
    }
    for why, output in cases.items():
        with pytest.raises(OutputRefusedError, match=why):
            check_outputs("submit", [output], inputs=[scene, sar_dir])
    check_outputs("map", [Output(tmp_path / "scenes" / "map.tif", "file")], inputs=[scene])  # beside it is fine
    with pytest.raises(OutputRefusedError, match="it holds the input"):  # a folder of the user's, to write into
        check_outputs("fit", [Output(tmp_path / "scenes")], inputs=[scene])
    run = tmp_path / "run"
    check_outputs("fit", [Output(run)])
    (run / "last.ckpt").write_bytes(b"the fit's checkpoint")
    # The project's own run folder, written into by name and never replaced, may hold a later command's input.
    check_outputs("predict", [Output(run)], inputs=[run / "last.ckpt"])
    with pytest.raises(OutputRefusedError, match="it holds the input"):
        check_outputs("submit", [Output(run, "replaced_folder")], inputs=[run / "last.ckpt"])


def test_paths_are_compared_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"scene")
    (tmp_path / "link.tif").symlink_to(scene)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for spelling in ("../scene.tif", str(tmp_path / "link.tif"), "../sub/../scene.tif"):
        with pytest.raises(OutputRefusedError, match="it is an input"):
            check_outputs("map", [Output(spelling, "file")], inputs=["../scene.tif"])
    with pytest.raises(OutputRefusedError, match="it is also --output"):
        check_outputs("map", [Output("x.png", "file", "--output"), Output("../sub/x.png", "file", "--preview")])


def test_data_roots_and_dataset_folders_are_never_written_but_pseudo_label_sets(tmp_path: Path) -> None:
    root = data_root(tmp_path / "data")
    train = root / "OpenEarthMap-SAR" / "train"
    refused = {
        "it is a data root": Output(root, "replaced_folder"),
        "lies inside the dataset folder": Output(train / "sar_images"),
        "whose files are never written": Output(train / "new_labels"),
    }
    for why, output in refused.items():
        with pytest.raises(OutputRefusedError, match=why):
            check_outputs("predict", [output], inputs=[root])
    check_outputs("predict", [Output(train / "labels_pl" / "new"), Output(train / "labels_pl_soft" / "new")], [root])
    assert (train / "labels_pl" / "new" / FOLDER_MARK).is_file()
    assert not (train / "labels_pl_soft" / FOLDER_MARK).exists()  # a parent inside the data stays unmarked
    with pytest.raises(OutputRefusedError, match="the folder holds files"):  # a set the project did not write
        check_outputs("predict", [Output(train / "labels_pl" / "old")], [root])
    check_outputs("fit", [Output(root / "runs")], inputs=[root])  # beside the datasets, in the root: fine


def test_generated_data_may_be_rewritten_only_where_the_project_generated_it(tmp_path: Path) -> None:
    real, generated = data_root(tmp_path / "real"), data_root(tmp_path / "demo", generated=True)
    labels = "OpenEarthMap-SAR/train/labels"
    check_outputs("install-official-labels", [Output(generated / labels, "generated_data")])
    check_outputs("make-demo-data", [Output(generated, "generated_data"), Output(tmp_path / "new", "generated_data")])
    with pytest.raises(OutputRefusedError, match="is not data this project generated"):
        check_outputs("install-official-labels", [Output(real / labels, "generated_data")])
    with pytest.raises(OutputRefusedError, match="it is a data root"):
        check_outputs("make-demo-data", [Output(real, "generated_data")])
    with pytest.raises(OutputRefusedError, match="lies inside the dataset folder"):
        check_outputs("make-demo-data", [Output(generated / "OpenEarthMap-SAR" / "x", "generated_data")])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("a")
    with pytest.raises(OutputRefusedError, match="not data this project generated"):
        check_outputs("make-demo-data", [Output(tmp_path / "mine", "generated_data")])


def test_a_check_without_claim_writes_nothing(tmp_path: Path) -> None:
    check_outputs("pipeline", [Output(tmp_path / "run"), Output(tmp_path / "m.tif", "file")], claim=False)
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_dead_processes_of_this_machine_are_removed_and_an_old_folder_put_back(tmp_path: Path) -> None:
    dead = dead_pid()
    stale = tmp_path / f".map.partial-{HOST}-{dead}.tif"
    sidecar = tmp_path / f".map.partial-{HOST}-{dead}.tif.aux.xml"
    alive = tmp_path / f".map.partial-{HOST}-{os.getppid()}.tif"  # a running process: still writing
    elsewhere = tmp_path / f".map.partial-othernode-{dead}.tif"  # another machine's process, on a shared disk
    other = tmp_path / f".other.partial-{HOST}-{dead}.tif"
    old = tmp_path / f".submission.old-{HOST}-{dead}"
    for path in (stale, sidecar, alive, elsewhere, other):
        path.write_bytes(b"x")
    old.mkdir()
    (old / "a.png").write_bytes(b"the previous submission")
    check_outputs("map", [Output(tmp_path / "map.tif", "file")])
    assert not stale.exists() and not sidecar.exists()
    assert alive.exists() and elsewhere.exists() and other.exists()
    removed = remove_leftovers(tmp_path)
    assert set(removed) == {other, old}
    assert (tmp_path / "submission" / "a.png").read_bytes() == b"the previous submission"  # killed mid-swap: restored


def test_atomic_output_names_its_temporary_file_by_host_and_process(tmp_path: Path) -> None:
    assert partial_file(tmp_path / "map.tif").name == f".map.partial-{HOST}-{os.getpid()}.tif"
    write_raster(tmp_path / "map.tif", np.zeros((4, 4), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["map.tif"]


def test_threads_claiming_the_same_folder_at_once_all_succeed(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from datamodules.output_safety import make_folder

    def claim(_: int) -> None:
        for _ in range(50):
            make_folder(tmp_path / "stage2", "pipeline")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(claim, range(4)))  # a shared temporary name made one thread's rename fail
    assert sorted(p.name for p in (tmp_path / "stage2").iterdir()) == [".sar-landcover.json"]


def test_writers_recording_files_in_one_folder_at_once_keep_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from datamodules import output_safety
    from datamodules.output_safety import record_file

    read_records = output_safety._records

    def slow_read(folder: Path) -> dict:
        records = read_records(folder)
        time.sleep(0.05)  # every writer reads before any writes, unless they are serialised
        return records

    monkeypatch.setattr(output_safety, "_records", slow_read)
    names = [f"map_{n}.tif" for n in range(4)]
    for name in names:
        (tmp_path / name).write_bytes(b"a map")
    threads = [threading.Thread(target=record_file, args=(tmp_path / name, "map")) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = json.loads((tmp_path / ".sar-landcover-files.json").read_text())["files"]
    assert sorted(records) == names
