"""The one output rule of every command: what it may write, checked before any work, and the marks that prove it.

An output may replace only what this project itself wrote there before:

- a folder the project writes into carries the mark ``.sar-landcover.json`` (written when the project
  creates or first claims it); an existing folder without the mark is used only when empty;
- a folder replaced as a whole (``submit --output``) must hold nothing but the files its mark lists;
- a single file (``map --output``, ``--preview``, ``evaluate --output``) is replaced only while it is as
  the project left it: its size and modification time are recorded in ``.sar-landcover-files.json``
  beside it;
- never an input, a folder that holds an input or lies inside an input folder (but a marked folder
  written into file by file may hold an input: the checkpoint of the fit whose folder a predict reuses);
- never a data root (a folder holding ``OpenEarthMap/`` or ``OpenEarthMap-SAR/``) or anything inside
  those two dataset folders, except the places the layout gives the project: pseudo-label sets
  (``OpenEarthMap-SAR/train/labels_pl/<set>`` and ``labels_pl_soft/<set>``) and, in data the project
  generated (``SYNTHETIC.json``), that data and its installed official labels.

Paths are compared resolved (symlinks, ``..``, relative and absolute spellings). A refused output
raises :class:`OutputRefusedError` naming the path, the option that named it and why; commands
check every output before they load a model or read data, so nothing has been written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from datamodules.errors import DataError
from datamodules.layout import (
    DATA_DIRS,
    LABELS,
    NOISE_MODEL_LABELS,
    OEM_SAR_DIR,
    OFFICIAL_LABELS_RECORD,
    PSEUDO_LABELS,
    PSEUDO_LABELS_SOFT,
    SYNTHETIC_MARKER,
)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent writers of one folder may lose a record
    fcntl = None

FOLDER_MARK = ".sar-landcover.json"
"""Marks a folder this project created or claimed; a replaced folder's mark also lists its files."""
FILE_RECORDS = ".sar-landcover-files.json"
"""Beside single-file outputs: name -> size and modification time when the project wrote it."""
WRITER = "sar-landcover"
HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())
"""This machine, in temporary names: a leftover is only cleaned up on the machine whose process left it."""

OutputKind = Literal["file", "folder", "replaced_folder", "generated_data"]
_GENERATED_PLACES = {(OEM_SAR_DIR, "train", name) for name in (LABELS, NOISE_MODEL_LABELS, OFFICIAL_LABELS_RECORD)}
_PSEUDO_LABEL_PLACES = {(OEM_SAR_DIR, "train", PSEUDO_LABELS), (OEM_SAR_DIR, "train", PSEUDO_LABELS_SOFT)}
_LEFTOVER = re.compile(r"^\.(?P<base>.+)\.(?P<what>partial|old)-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)")


class OutputRefusedError(DataError):
    """An output path the command may not write; raised before anything was written."""


@dataclass(frozen=True)
class Output:
    """One path a command writes.

    Attributes:
        path: the file or folder.
        kind: ``file`` (written atomically, replacing an earlier one), ``folder`` (written into, file
            by file), ``replaced_folder`` (written aside, replacing an earlier one as a whole when
            complete) or ``generated_data`` (a synthetic data root, or the official labels installed
            in one).
        option: the option or setting that names the path, for the error (e.g. ``--preview``).
    """

    path: str | os.PathLike
    kind: OutputKind = "folder"
    option: str = "output"


def resolved(path: str | os.PathLike) -> Path:
    """``path`` absolute, with ``~``, ``..`` and symlinks resolved: the form paths are compared in."""
    return Path(path).expanduser().resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


def dataset_tree(path: Path) -> tuple[Path, tuple[str, ...]] | None:
    """(data root, parts below it) when ``path`` lies in an ``OpenEarthMap/`` or ``OpenEarthMap-SAR/`` folder."""
    for folder in (path, *path.parents):
        if folder.name in DATA_DIRS and folder.is_dir():
            return folder.parent, path.relative_to(folder.parent).parts
    return None


def is_data_root(path: Path) -> bool:
    """Whether ``path`` holds ``OpenEarthMap/`` or ``OpenEarthMap-SAR/``."""
    return any((path / name).is_dir() for name in DATA_DIRS)


def _has_mark(folder: Path) -> bool:
    return (folder / FOLDER_MARK).is_file()


def _marked_files(folder: Path) -> set[str]:
    try:
        files = json.loads((folder / FOLDER_MARK).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(f) for f in files} if isinstance(files, list) else set()


def _records(folder: Path) -> dict[str, Any]:
    try:
        records = json.loads((folder / FILE_RECORDS).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return records if isinstance(records, dict) else {}


def _stamp(path: Path) -> dict[str, int]:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # the thread too: the pipeline runs stage-2 chains side by side in threads that claim the same parents
    temporary = path.with_name(f"{path.name}.partial-{HOST}-{os.getpid()}-{threading.get_ident()}")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    # flock on the folder itself (no lock file left in the user's folder); it serialises threads too,
    # since each call opens its own file description
    if fcntl is None:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _refuse(output: Output, path: Path, why: str) -> OutputRefusedError:
    return OutputRefusedError(path, f"refused as {output.option}: {why}; nothing was written")


def _check_place(output: Output, path: Path) -> None:
    """The data-root part of the rule: data roots and dataset folders are never written, but for designated places."""
    tree = dataset_tree(path)
    generated = output.kind == "generated_data"
    if tree is not None:
        root, parts = tree
        if generated and parts in _GENERATED_PLACES:
            if (root / SYNTHETIC_MARKER).is_file():
                return
            raise _refuse(output, path, f"{root} is not data this project generated (no {SYNTHETIC_MARKER})")
        if output.kind == "folder" and len(parts) == 4 and parts[:3] in _PSEUDO_LABEL_PLACES:
            return
        raise _refuse(
            output,
            path,
            f"it lies inside the dataset folder {root / parts[0]}, whose files are never written (pseudo-label sets "
            f"go to {root / OEM_SAR_DIR / 'train' / PSEUDO_LABELS}/<set>)",
        )
    if is_data_root(path):
        if generated and (path / SYNTHETIC_MARKER).is_file():
            return
        raise _refuse(output, path, "it is a data root (it holds OpenEarthMap/ or OpenEarthMap-SAR/)")


def _check_inputs(output: Output, path: Path, inputs: list[Path]) -> None:
    for source in inputs:
        if path == source:
            raise _refuse(output, path, "it is an input of this command")
        # A folder of the project's that is written into, never replaced as a whole, may hold an input of
        # its own making: the checkpoint of the fit whose run folder a predict logs into.
        if _inside(source, path) and not (output.kind == "folder" and _has_mark(path)):
            raise _refuse(output, path, f"it holds the input {source}")
        if _inside(path, source) and not is_data_root(source):  # a data root's own places: _check_place
            raise _refuse(output, path, f"it lies inside the input folder {source}")


def _check_mark(output: Output, path: Path) -> None:
    """The ownership part of the rule: what is there already must be the project's own."""
    if path.name in (FOLDER_MARK, FILE_RECORDS):
        raise _refuse(output, path, "the name is kept for the project's own records")
    if not path.exists():
        return
    if output.kind == "file":
        if path.is_dir():
            raise _refuse(output, path, "it is a folder; name a file")
        record = _records(path.parent).get(path.name)
        if not isinstance(record, dict) or record.get("stamp") != _stamp(path):
            raise _refuse(output, path, "the file exists and sar-landcover did not write it (or it changed since)")
        return
    if output.kind == "generated_data":
        if (path.is_dir() and not any(path.iterdir())) or (path / SYNTHETIC_MARKER).is_file():
            return
        if dataset_tree(path) is None:
            raise _refuse(output, path, f"it exists and is not data this project generated (no {SYNTHETIC_MARKER})")
        return  # a designated place of generated data (checked by _check_place)
    if not path.is_dir():
        raise _refuse(output, path, "it is a file; name a folder")
    entries = {p.name for p in path.iterdir()}
    if not entries:
        return
    if FOLDER_MARK not in entries:
        raise _refuse(output, path, f"the folder holds files sar-landcover did not write (it has no {FOLDER_MARK})")
    if output.kind == "replaced_folder":
        foreign = sorted(entries - _marked_files(path) - {FOLDER_MARK})
        if foreign:
            raise _refuse(output, path, f"the folder holds {foreign[0]!r}, which sar-landcover did not write there")


def _check_together(outputs: list[tuple[Output, Path]]) -> None:
    for i, (first, a) in enumerate(outputs):
        for second, b in outputs[i + 1 :]:
            if a == b and not (first.kind == second.kind == "folder"):
                raise _refuse(second, b, f"it is also {first.option}")
            for outer, inner, path in ((first, second, b), (second, first, a)):
                if outer.kind == "replaced_folder" and _inside(path, resolved(outer.path)):
                    raise _refuse(inner, path, f"it lies inside {outer.option}, which is replaced as a whole")


def check_outputs(
    command: str,
    outputs: Sequence[Output],
    inputs: Iterable[str | os.PathLike | None] = (),
    claim: bool = True,
) -> list[Path]:
    """Refuse any output the rule forbids, before any work; then claim the others for writing.

    Claiming creates and marks the folders (and the parent folders it creates), and removes what
    killed runs on this machine left behind (temporary ``.partial-`` files and folders of processes
    that no longer exist; a replaced folder's ``.old-`` copy is put back if the new one never arrived).

    Args:
        command: the command that writes, recorded in the marks.
        outputs: every path the command will write.
        inputs: paths it reads (files or folders); missing ones and None are ignored.
        claim: create and mark (False: check only, e.g. for a dry run).

    Returns:
        The resolved output paths, in order.

    Raises:
        OutputRefusedError: the first output that may not be written: its path, option and why.
    """
    pairs = [(output, resolved(output.path)) for output in outputs]
    sources = [resolved(p) for p in inputs if p is not None and str(p) and Path(p).expanduser().exists()]
    _check_together(pairs)
    for output, path in pairs:
        _check_place(output, path)
        _check_inputs(output, path, sources)
        _check_mark(output, path)
    if claim:
        for output, path in pairs:
            _claim(command, output, path)
    return [path for _, path in pairs]


def _claim(command: str, output: Output, path: Path) -> None:
    if output.kind == "generated_data":
        return  # the generator and the installer write their own records
    if output.kind == "folder":
        make_folder(path, command)
        remove_leftovers(path)
        return
    make_folder(path.parent, command, claim_existing=False)  # a file's folder is not claimed, only created
    remove_leftovers(path.parent, base=path.stem if output.kind == "file" else path.name)


def make_folder(folder: Path, command: str, claim_existing: bool = True) -> None:
    """Create ``folder`` and its missing parents, marking as the project's each folder it creates.

    Args:
        folder: the folder.
        command: recorded in the marks.
        claim_existing: also mark ``folder`` when it exists (it was checked to be empty or marked).
            Parents created inside a dataset folder (a pseudo-label set's ``labels_pl/``) stay unmarked.
    """
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for created in missing:
        if created == folder or dataset_tree(created) is None:
            write_folder_mark(created, command)
    if claim_existing and not _has_mark(folder):
        write_folder_mark(folder, command)


def write_folder_mark(folder: Path, command: str, files: list[str] | None = None) -> None:
    """Mark ``folder`` as the project's; ``files`` lists the contents of a folder replaced as a whole."""
    mark: dict[str, Any] = {"written_by": WRITER, "command": command}
    if files is not None:
        mark["files"] = files
    _write_json(folder / FOLDER_MARK, mark)


def record_file(path: str | os.PathLike, command: str) -> None:
    """Record that the project wrote the file ``path`` as it is now, so a later run may replace it."""
    file = resolved(path)
    with _folder_lock(file.parent):  # read, add, write: two writers in one folder must not drop a record
        records = _records(file.parent)
        records[file.name] = {"written_by": WRITER, "command": command, "stamp": _stamp(file)}
        _write_json(file.parent / FILE_RECORDS, {"files": records})


def partial_file(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed to ``path`` (keeps the suffix for GDAL)."""
    return path.with_name(f".{path.stem}.partial-{HOST}-{os.getpid()}{path.suffix}")


def partial_folder(path: Path, what: Literal["partial", "old"] = "partial") -> Path:
    """The temporary name of a folder being written (``partial``) or being replaced (``old``)."""
    return path.with_name(f".{path.name}.{what}-{HOST}-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(folder: Path, base: str | None = None) -> list[Path]:
    """Remove the temporary files and folders that killed processes of this machine left in ``folder``.

    Args:
        folder: where to look.
        base: only the leftovers of this output (a file's stem or a folder's name); None for all.

    Returns:
        What was removed (or, for an ``.old-`` folder whose replacement never arrived, put back).
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _LEFTOVER.match(entry.name)
        if not match or match["host"] != HOST or _alive(int(match["pid"])):
            continue
        if base is not None and match["base"] != base:
            continue
        original = folder / match["base"]
        if match["what"] == "old" and entry.is_dir() and not original.exists():
            os.replace(entry, original)  # killed between moving the old folder aside and renaming the new one in
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
