"""One TensorBoard run folder's event files, read with the ``tensorboard`` package (no TensorFlow).

What is kept: every scalar (its tag, step, value and wall time), the
hyperparameters of the hparams plugin's session start, the status of its
session end, and the first and last wall time. Everything else is counted
by kind (histograms, images, text, graphs...) and left out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacha_sdk.exceptions import ImportSourceError
from pacha_sdk.importers._store import Point
from pacha_sdk.models import RunStatus

if TYPE_CHECKING:
    from pacha_sdk.models import HyperparamValue

__all__ = ["NEGATIVE_STEP", "RunFolder", "is_event_file", "read_folder"]

NEGATIVE_STEP = "points with a negative step"
_SCALARS = "scalars"
_HPARAMS = "hparams"
_SESSION_STATUS = {1: RunStatus.COMPLETED, 2: RunStatus.FAILED, 3: RunStatus.RUNNING}
_NOT_SUMMARIES = {
    "graph_def": "graphs",
    "meta_graph_def": "graphs",
    "tagged_run_metadata": "run metadata",
}


def is_event_file(path: Path) -> bool:
    """Whether *path* is an event file (TensorBoard's own test: ``tfevents`` in its name)."""
    return "tfevents" in path.name and path.is_file()


@dataclass
class RunFolder:
    """What one folder's event files hold."""

    path: Path
    files: list[str]
    """Names of its event files, in TensorBoard's order (by name)."""
    points: list[Point] = field(default_factory=list)
    hparams: dict[str, HyperparamValue] = field(default_factory=dict)
    has_session: bool = False
    """Whether an hparams session starts here (``add_hparams`` writes one per call)."""
    status: RunStatus | None = None
    """From the hparams session end, if there is one."""
    first_micros: int | None = None
    last_micros: int | None = None
    identity: str = ""
    """Its first event file's name and first wall time: the same wherever the folder moves."""
    ignored: Counter[str] = field(default_factory=Counter)

    def seen(self, micros: int) -> None:
        """Widen the run's time span to *micros*."""
        self.first_micros = micros if self.first_micros is None else min(self.first_micros, micros)
        self.last_micros = micros if self.last_micros is None else max(self.last_micros, micros)

    def absorb(self, child: RunFolder) -> None:
        """Take in an ``add_hparams`` sub-folder: its hyperparameters, scalars and times."""
        self.points.extend(child.points)
        self.hparams.update(child.hparams)
        self.has_session = True
        self.status = child.status or self.status
        for micros in (child.first_micros, child.last_micros):
            if micros is not None:
                self.seen(micros)
        self.ignored.update(child.ignored)
        self.files += [f"{child.path.name}/{name}" for name in child.files]


def _hparam_value(value: Any) -> HyperparamValue:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind == "string_value":
        return str(value.string_value)
    if kind == "number_value":
        number = float(value.number_value)
        return number if math.isfinite(number) else repr(number)
    from google.protobuf import json_format

    return json.dumps(json_format.MessageToDict(value), sort_keys=True)


def _read_hparams(folder: RunFolder, content: bytes) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    which = data.WhichOneof("data")
    if which == "session_start_info":
        folder.has_session = True
        for key, value in data.session_start_info.hparams.items():
            folder.hparams[key] = _hparam_value(value)
    elif which == "session_end_info":
        folder.status = _SESSION_STATUS.get(int(data.session_end_info.status), folder.status)


def _scalar(value: Any) -> float | None:
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(value.tensor)
    return float(array.item()) if array.size == 1 else None


def _read_summary(folder: RunFolder, event: Any, micros: int, plugins: dict[str, str]) -> None:
    for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if plugin:
            plugins[value.tag] = plugin
        else:  # writers put the metadata on a tag's first value only
            plugin = plugins.get(value.tag, "")
        if plugin == _HPARAMS:
            _read_hparams(folder, value.metadata.plugin_data.content)
        elif plugin == _SCALARS and (number := _scalar(value)) is not None:
            if event.step < 0:
                folder.ignored[NEGATIVE_STEP] += 1
            else:
                folder.points.append(Point(value.tag, int(event.step), number, micros))
        else:
            folder.ignored[plugin or "other summaries"] += 1


_RECORD_FRAMING = 16
"""Bytes around each record of an event file: length (8), its CRC (4), the data's CRC (4)."""


def _events(path: Path) -> Iterator[Any]:
    """The events of one file, migrated as TensorBoard's ``EventFileLoader`` does.

    TensorBoard's loader stops quietly at the first record it cannot read
    (it tails files still being written); an import must not lose the rest
    silently, so the bytes read are counted and a shortfall is an error.
    """
    from tensorboard import data_compat, dataclass_compat
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    initial_metadata: dict[str, Any] = {}
    consumed = 0
    for record in RawEventFileLoader(str(path)).Load():
        consumed += len(record) + _RECORD_FRAMING
        event = data_compat.migrate_event(event_pb2.Event.FromString(record))
        yield from dataclass_compat.migrate_event(event, initial_metadata)
    size = path.stat().st_size
    if consumed != size:
        raise ImportSourceError(
            path.name,
            f"{size - consumed} of its {size} bytes cannot be read "
            "(corrupt, or still being written)",
        )


def read_folder(path: Path) -> RunFolder:
    """Read every event file directly in *path*; a corrupt one is an :class:`ImportSourceError`."""
    files = sorted(p.name for p in path.iterdir() if is_event_file(p))
    folder = RunFolder(path=path, files=files)
    plugins: dict[str, str] = {}
    for name in files:
        for event in _events(path / name):
            micros = round(event.wall_time * 1_000_000)
            if not folder.identity:
                folder.identity = f"{name}@{event.wall_time!r}"
            folder.seen(micros)
            kind = event.WhichOneof("what")
            if kind == "summary":
                _read_summary(folder, event, micros, plugins)
            elif kind in _NOT_SUMMARIES:
                folder.ignored[_NOT_SUMMARIES[kind]] += 1
    if not folder.identity and files:
        folder.identity = files[0]
    return folder
