"""Activity files -> the domain objects the webhook path builds (for `backstride analyze`).

Pure readers: no Flask, no database, no network. The format is sniffed from the content (a FIT header's
".FIT" signature, an XML root of TrainingCenterDatabase or gpx, JSON), the extension only breaks ties; a
gzip-compressed file (Strava's bulk export: *.fit.gz, *.gpx.gz) is unpacked first. Streams follow Strava's
conventions (time in seconds from the first sample, cadence per leg, ...); a series the file lacks is None.

Every failure is an ActivityFileError whose str() is one line, "<file name>: <reason>".
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from plugin.domain import Activity, Streams
from plugin.files import _xml, fit, gpx, strava_json, tcx
from plugin.files._core import UnreadableFile

__all__ = ["ActivityFileError", "FileFormat", "LoadedFile", "read_activity_file"]

FileFormat = Literal["fit", "tcx", "gpx", "json"]

# Larger than any recording a person makes (a 24-hour FIT file at 1 s is ~10 MB); guards memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class ActivityFileError(Exception):
    """A file that cannot be read as an activity; str() is "<file name>: <reason>" on one line."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = " ".join(reason.split())  # one line, whatever a library's message held
        super().__init__(f"{name}: {self.reason}")


@dataclass(frozen=True)
class LoadedFile:
    activity: Activity
    streams: Streams | None
    format: FileFormat


def _stem_and_suffix(name: str) -> tuple[str, str]:
    path = Path(name)
    if path.suffix.lower() == ".gz":
        path = Path(path.stem)
    return (path.stem or name), path.suffix.lower()


def _gunzip(data: bytes) -> bytes:
    """Unpack gzip (several members too); a truncated archive yields what it holds up to the break."""
    out = bytearray()
    rest = data
    while rest[:2] == _GZIP_MAGIC:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, MAX_FILE_BYTES - len(out))
        except zlib.error as exc:
            if not out:
                raise UnreadableFile(f"damaged gzip data ({exc})") from exc
            break
        if len(out) >= MAX_FILE_BYTES:
            raise UnreadableFile("gzip data unpacks to more than 256 MB")
        rest = inflater.unused_data
        if not inflater.eof:
            break  # truncated: keep what was unpacked
    if not out:
        raise UnreadableFile("empty or damaged gzip data")
    return bytes(out)


def _sniff(data: bytes, suffix: str) -> str:
    if len(data) >= 12 and data[8:12] == b".FIT":
        return "fit"
    head = _xml.normalise(data[:4096])
    if head[:1] == b"<":
        return "xml"
    if head[:1] in (b"{", b"["):
        return "json"
    return {".fit": "fit", ".tcx": "xml", ".gpx": "xml", ".xml": "xml", ".json": "json"}.get(suffix, "")


def _read_xml(data: bytes, stem: str) -> LoadedFile:
    document = _xml.parse(data)
    root = document.root.tag.lower()
    if root == "trainingcenterdatabase":
        activity, streams = tcx.read(document, stem)
        return LoadedFile(activity, streams, "tcx")
    if root == "gpx":
        activity, streams = gpx.read(document, stem)
        return LoadedFile(activity, streams, "gpx")
    raise UnreadableFile(f"XML file with root <{document.root.tag}> is neither TCX nor GPX")


def _read_bytes(data: bytes, stem: str, suffix: str) -> LoadedFile:
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    if not data.strip():
        raise UnreadableFile("empty file")
    kind = _sniff(data, suffix)
    if kind == "fit":
        if data[8:12] != b".FIT":
            raise UnreadableFile("not a FIT file (no '.FIT' signature in the header)")
        activity, streams = fit.read(data, stem)
        return LoadedFile(activity, streams, "fit")
    if kind == "xml":
        return _read_xml(data, stem)
    if kind == "json":
        activity, maybe_streams = strava_json.read(data, stem)
        return LoadedFile(activity, maybe_streams, "json")
    raise UnreadableFile("unknown format: expected a FIT, TCX, GPX or Strava streams JSON file")


def read_activity_file(path: str | Path) -> LoadedFile:
    """Read a FIT, TCX, GPX or Strava streams JSON file (optionally gzip-compressed)."""
    path = Path(path)
    name = path.name or str(path)
    stem, suffix = _stem_and_suffix(name)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ActivityFileError(name, "no such file") from None
    except IsADirectoryError:
        raise ActivityFileError(name, "is a directory, not a file") from None
    except PermissionError:
        raise ActivityFileError(name, "permission denied") from None
    except OSError as exc:
        raise ActivityFileError(name, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ActivityFileError(name, "larger than 256 MB: not an activity recording")
    if not data:
        raise ActivityFileError(name, "empty file")
    try:
        return _read_bytes(data, stem, suffix)
    except UnreadableFile as exc:
        raise ActivityFileError(name, str(exc)) from None
    except RecursionError:
        raise ActivityFileError(name, "content nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - the CLI promises a one-line error for any file
        raise ActivityFileError(name, f"unreadable content ({type(exc).__name__}: {exc})") from exc
