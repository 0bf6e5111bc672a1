"""Readers for the annotation files the retrieval benchmarks are distributed in.

Every reader turns one downloaded file (plus, for some datasets, a separate captions file) into
the generic :class:`~pig_lightning.data.sources.annotations.VideoRecord` list that ``pig-lightning
convert`` writes as JSON lines. The families:

* MSR-VTT, three packagings: CLIP4Clip's csv split files (``MSRVTT_train.9k.csv`` lists ids and
  takes every caption from ``MSRVTT_data.json``; ``MSRVTT_JSFUSION_test.csv`` is the 1k-A test
  with one caption per video), ``MSRVTT_data.json`` itself filtered by its ``split`` field, and
  CLIP-ViP's ``train9k.jsonl`` / ``test1ka.jsonl``.
* MSVD: an id list (``train_list.txt`` ...) plus ``raw-captions.pkl`` (tokenised captions).
* VATEX: the official JSON list with ten English captions per clip (``enCap``).
* LSMDC: tab-separated files, one clip and one sentence per line.
* Paragraph retrieval, DiDeMo and ActivityNet Captions: the per-moment sentences of a video are
  joined, in file order, into one query. The moments are kept in ``meta``: ``segments`` (seconds,
  one ``[start, end]`` per sentence), ``span`` (their union) and ``sentences``. DiDeMo's ``times``
  count 5-second chunks, one ``[first, last]`` per annotator; a sentence's segment is
  ``[mean(first) * 5, (mean(last) + 1) * 5]``. Records cover the whole video unless
  ``use_span=True`` sets their ``start``/``end`` to the span.

Video paths come from a ``str.format`` pattern per format (``{video_id}.mp4`` for MSR-VTT ...),
which the caller may override, e.g. after re-encoding everything to mp4.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import pickle
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pig_lightning.file_checks import DuplicateKeyError, refuse_lfs_pointer, unique_keys, visible
from pig_lightning.data.sources.annotations import (
    AnnotationError,
    VideoRecord,
    check_unique_ids,
    iter_json_lines,
    read_jsonl,
)

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "FormatSpec", "describe_formats", "read_annotations"]

DIDEMO_CHUNK_SECONDS = 5.0
LSMDC_COLUMNS = ("clip_id", "start_aligned", "end_aligned", "start_extracted", "end_extracted", "sentence")


# ---------------------------------------------------------------------------------------------
# options and small helpers


class _VideoNamer:
    """Formats a video path from a pattern such as ``{movie}/{video_id}.avi``."""

    def __init__(self, pattern: str, fields: tuple[str, ...], format_name: str):
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
        except ValueError as exc:
            raise ValueError(f"video_pattern {pattern!r} is not a valid format string ({exc})") from exc
        bases = {re.split(r"[.\[]", name, maxsplit=1)[0] for name in used}
        unknown = sorted(b for b in bases if b not in fields)
        if unknown or "" in bases:
            raise ValueError(
                f"video_pattern {pattern!r} uses {', '.join(repr(u) for u in unknown) or 'a positional field'}; "
                f"format {format_name!r} provides {', '.join('{' + f + '}' for f in fields)}"
            )
        if not bases:
            raise ValueError(f"video_pattern {pattern!r} has no field: every video would get the same path")
        self.pattern = pattern

    def __call__(self, **fields: str) -> str:
        return self.pattern.format(**fields)


@dataclasses.dataclass(frozen=True)
class _Options:
    captions_file: Path | None
    split: str | None
    split_file: Path | None
    video: _VideoNamer | None
    use_span: bool


def _require_file(path: str | Path, option: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} not found: {path}")
    return path


def _load_json(path: Path) -> Any:
    refuse_lfs_pointer(path)
    with open(path, encoding="utf-8-sig") as f:
        try:
            return json.load(f, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
        except DuplicateKeyError as exc:
            raise AnnotationError(f"{path}: the key {exc.key!r} appears twice in one JSON object (two files pasted "
                                  "together?); refused rather than keeping one of the two") from exc


def _caption(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise AnnotationError(f"{where}: caption must be a string, got {type(text).__name__}")
    text = text.strip()
    if not visible(text):
        raise AnnotationError(f"{where}: empty caption" + (" (only invisible characters)" if text else ""))
    return text


def _key(entry: Any, key: str, where: str) -> Any:
    if not isinstance(entry, dict):
        raise AnnotationError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    if key not in entry:
        raise AnnotationError(f"{where}: missing key {key!r}")
    return entry[key]


def _id(value: Any, where: str, what: str = "video id") -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise AnnotationError(f"{where}: {what} must be a non-empty string, got {value!r}")
    return str(value).strip()


def _read_id_list(path: Path) -> list[tuple[str, int]]:
    """One id per line (blank lines skipped); a repeated id is an error naming both lines."""
    seen: dict[str, int] = {}
    refuse_lfs_pointer(path)
    with open(path, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            video_id = line.strip()
            if not video_id:
                continue
            if video_id in seen:
                raise AnnotationError(f"{path}:{line_no}: video id {video_id!r} already listed on line {seen[video_id]}")
            seen[video_id] = line_no
    if not seen:
        raise AnnotationError(f"{path}: no video ids")
    return list(seen.items())


def _csv_rows(path: Path, delimiter: str = ",", header: tuple[str, ...] | None = None
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a csv/tsv file; the header is read from the file unless given.

    Rows with the wrong number of fields are errors naming ``file:line``; blank lines are skipped.
    Tab-separated files are read without quote handling (their sentences contain quotes).
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    refuse_lfs_pointer(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        try:
            if header is None:
                first = next(reader, None)
                if first is None:
                    raise AnnotationError(f"{path}: empty file (expected a header line)")
                header = tuple(name.strip() for name in first)
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue
                if len(fields) != len(header):
                    raise AnnotationError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields ({', '.join(header)}), got {len(fields)}"
                    )
                yield reader.line_num, dict(zip(header, fields))
        except csv.Error as exc:
            raise AnnotationError(f"{path}:{reader.line_num}: malformed row ({exc})") from exc


def _merge(grouped: dict[str, list[str]], text: str, video_id: str) -> None:
    grouped.setdefault(video_id, []).append(text)


def _youtube_id(video_id: str, prefix: str = "", suffix: str = "") -> str:
    video_id = video_id[len(prefix):] if prefix and video_id.startswith(prefix) else video_id
    match = re.fullmatch(suffix, video_id) if suffix else None
    return match.group(1) if match else video_id


# ---------------------------------------------------------------------------------------------
# generic JSON lines and MSR-VTT


def _read_generic(path: Path, opts: _Options) -> list[VideoRecord]:
    records = read_jsonl(path)
    if opts.video is None:
        return records
    return [dataclasses.replace(r, video=opts.video(video_id=r.video_id, video=r.video)) for r in records]


def _msrvtt_captions(data: Any, path: Path) -> dict[str, list[str]]:
    """Loaded ``MSRVTT_data.json`` -> video id -> its captions in file order."""
    sentences = _key(data, "sentences", str(path))
    if not isinstance(sentences, list):
        raise AnnotationError(f"{path}: 'sentences' must be a list")
    captions: dict[str, list[str]] = {}
    for i, entry in enumerate(sentences):
        where = f"{path}: sentences[{i}]"
        video_id = _id(_key(entry, "video_id", where), where)
        _merge(captions, _caption(_key(entry, "caption", where), f"{where} (video {video_id!r})"), video_id)
    return captions


def _read_msrvtt_csv(path: Path, opts: _Options) -> list[VideoRecord]:
    rows = _csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise AnnotationError(f"{path}: no rows")
    header = tuple(first[1])
    if "video_id" not in header:
        raise AnnotationError(f"{path}:1: missing column 'video_id' (header: {', '.join(header)})")
    if "sentence" in header:  # MSRVTT_JSFUSION_test.csv: key,vid_key,video_id,sentence
        if opts.captions_file is not None:
            raise ValueError(f"{path} carries its own captions (column 'sentence'); do not pass captions_file")
        return _msrvtt_sentence_rows(path, [first, *rows], opts)
    if opts.captions_file is None:
        raise ValueError(f"msrvtt_csv: {path} lists video ids only; pass captions_file (MSRVTT_data.json)")
    captions = _msrvtt_captions(_load_json(opts.captions_file), opts.captions_file)
    records, seen = [], {}
    for line_no, row in [first, *rows]:
        where = f"{path}:{line_no}"
        video_id = _id(row["video_id"], where)
        if video_id in seen:
            raise AnnotationError(f"{where}: video id {video_id!r} already listed on line {seen[video_id]}")
        seen[video_id] = line_no
        if video_id not in captions:
            raise AnnotationError(f"{where}: video {video_id!r} has no captions in captions_file {opts.captions_file}")
        records.append(VideoRecord(video_id, opts.video(video_id=video_id), tuple(captions[video_id])))
    return records


def _msrvtt_sentence_rows(path: Path, rows: list[tuple[int, dict[str, str]]], opts: _Options) -> list[VideoRecord]:
    records, seen = [], {}
    for line_no, row in rows:
        where = f"{path}:{line_no}"
        video_id = _id(row["video_id"], where)
        if video_id in seen:
            raise AnnotationError(f"{where}: video id {video_id!r} already used on line {seen[video_id]}")
        seen[video_id] = line_no
        records.append(VideoRecord(video_id, opts.video(video_id=video_id), (_caption(row["sentence"], where),)))
    return records


def _read_msrvtt_json(path: Path, opts: _Options) -> list[VideoRecord]:
    data = _load_json(path)
    videos = _key(data, "videos", str(path))
    if not isinstance(videos, list):
        raise AnnotationError(f"{path}: 'videos' must be a list")
    chosen: list[str] = []
    splits: set[str] = set()
    for i, entry in enumerate(videos):
        where = f"{path}: videos[{i}]"
        video_id = _id(_key(entry, "video_id", where), where)
        split = str(_key(entry, "split", f"{where} (video {video_id!r})"))
        splits.add(split)
        if split == opts.split:
            chosen.append(video_id)
    if opts.split not in splits:
        raise AnnotationError(f"{path}: unknown split {opts.split!r}; the file has {', '.join(sorted(splits)) or 'none'}")
    captions = _msrvtt_captions(data, path)
    records = []
    for video_id in chosen:
        if video_id not in captions:
            raise AnnotationError(f"{path}: video {video_id!r} (split {opts.split!r}) has no entry in 'sentences'")
        records.append(VideoRecord(video_id, opts.video(video_id=video_id), tuple(captions[video_id])))
    check_unique_ids(records, f"{path} (split {opts.split!r})")
    return records


def _read_msrvtt_jsonl(path: Path, opts: _Options) -> list[VideoRecord]:
    grouped: dict[str, list[str]] = {}
    for where, row in iter_json_lines(path):
        key = "clip_id" if "clip_id" in row else "video_id"
        if key not in row:
            raise AnnotationError(f"{where}: missing key 'clip_id' (or 'video_id')")
        # CLIP-ViP resolves "<folder>/<id>" ids to "<id>.mp4": keep the last part.
        video_id = _id(row[key], where).split("/")[-1]
        texts = _key(row, "text", where)
        texts = texts if isinstance(texts, list) else [texts]
        if not texts:
            raise AnnotationError(f"{where}: 'text' is an empty list")
        for text in texts:
            _merge(grouped, _caption(text, where), video_id)
    return [VideoRecord(v, opts.video(video_id=v), tuple(c)) for v, c in grouped.items()]


# ---------------------------------------------------------------------------------------------
# MSVD, VATEX, LSMDC


class _PlainDataUnpickler(pickle.Unpickler):
    """Reads plain data only (dicts, lists, tuples, sets, strings, numbers): a pickle that names any
    other class or function (which unpickling would call) is refused instead of run."""

    ALLOWED = {("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "int",
                                                "float", "bool", "complex")} | {
        ("collections", "OrderedDict"), ("collections", "defaultdict"),
        ("_codecs", "encode"),  # how protocol-2 pickles (e.g. written by Python 2) store bytes
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, and only plain data (dicts, lists, strings, "
                                     "numbers) is read from a captions pickle")


MSVD_CAPTIONS = ("a pickle of a dict video id -> captions (CLIP4Clip's raw-captions.pkl) or the same dict as JSON "
                 "(X-Pool's MSVD captions)")


def _load_captions(path: Path) -> Any:
    """MSVD's captions file: a pickle (read as plain data, nothing in it is run) or its JSON form."""
    refuse_lfs_pointer(path)
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return _load_json(path)
    if head[:1] != b"\x80":  # every pickle of protocol 2 or later starts with the PROTO opcode
        raise AnnotationError(f"{path}: neither a pickle nor JSON; captions_file must be {MSVD_CAPTIONS}")
    with open(path, "rb") as f:
        try:
            return _PlainDataUnpickler(f).load()
        except pickle.UnpicklingError as exc:
            raise AnnotationError(f"{path}: refused: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
            raise AnnotationError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); captions_file must "
                                  f"be {MSVD_CAPTIONS}") from exc


def _msvd_caption(caption: Any, where: str) -> str:
    if isinstance(caption, (list, tuple)):
        if not all(isinstance(token, str) for token in caption):
            raise AnnotationError(f"{where}: tokens must be strings")
        caption = " ".join(token.strip() for token in caption if token.strip())
    return _caption(caption, where)


def _read_msvd(path: Path, opts: _Options) -> list[VideoRecord]:
    captions = _load_captions(opts.captions_file)
    if not isinstance(captions, dict):
        raise AnnotationError(f"{opts.captions_file}: expected a dict video id -> captions, got {type(captions).__name__}")
    records = []
    for video_id, line_no in _read_id_list(path):
        if video_id not in captions:
            raise AnnotationError(f"{path}:{line_no}: video {video_id!r} is not in captions_file {opts.captions_file}")
        entries = captions[video_id]
        where = f"{opts.captions_file}: video {video_id!r}"
        if not isinstance(entries, (list, tuple)) or not entries:
            raise AnnotationError(f"{where}: expected a non-empty list of captions")
        texts = tuple(_msvd_caption(c, f"{where}, caption {j}") for j, c in enumerate(entries))
        records.append(VideoRecord(video_id, opts.video(video_id=video_id), texts))
    return records


def _read_vatex(path: Path, opts: _Options) -> list[VideoRecord]:
    data = _load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of clips, got {type(data).__name__}")
    by_id: dict[str, VideoRecord] = {}
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        video_id = _id(_key(entry, "videoID", where), where)
        where = f"{where} (videoID {video_id!r})"
        captions = _key(entry, "enCap", where)
        if not isinstance(captions, list) or not captions:
            raise AnnotationError(f"{where}: 'enCap' must be a non-empty list of strings")
        texts = tuple(_caption(c, f"{where}, enCap[{j}]") for j, c in enumerate(captions))
        if video_id in by_id:
            raise AnnotationError(f"{where}: videoID {video_id!r} appears twice")
        youtube = _youtube_id(video_id, suffix=r"(.+)_\d+_\d+")
        by_id[video_id] = VideoRecord(video_id, opts.video(video_id=video_id, youtube_id=youtube), texts)
    if opts.split_file is None:
        return list(by_id.values())
    records = []
    for video_id, line_no in _read_id_list(opts.split_file):
        if video_id not in by_id:
            raise AnnotationError(f"{opts.split_file}:{line_no}: video {video_id!r} is not in {path}")
        records.append(by_id[video_id])
    return records


def _read_lsmdc(path: Path, opts: _Options) -> list[VideoRecord]:
    grouped: dict[str, list[str]] = {}
    movies: dict[str, str] = {}
    for line_no, row in _csv_rows(path, delimiter="\t", header=LSMDC_COLUMNS):
        where = f"{path}:{line_no}"
        clip_id = _id(row["clip_id"], where, "clip id")
        movie, sep, _ = clip_id.rpartition("_")
        if not sep or not movie:
            raise AnnotationError(f"{where}: clip id {clip_id!r} is not '<movie>_<start>-<end>'")
        movies[clip_id] = movie
        # A clip id can carry several sentences in the training file: they become one record.
        _merge(grouped, _caption(row["sentence"], where), clip_id)
    return [VideoRecord(c, opts.video(video_id=c, movie=movies[c]), tuple(t)) for c, t in grouped.items()]


# ---------------------------------------------------------------------------------------------
# paragraph retrieval: DiDeMo, ActivityNet Captions


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _pairs(value: Any, where: str, key: str) -> list[tuple[float, float]]:
    if not isinstance(value, list) or not value:
        raise AnnotationError(f"{where}: {key!r} must be a non-empty list of [start, end] pairs")
    pairs = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise AnnotationError(f"{where}: {key!r} must hold [start, end] pairs, got {pair!r}")
        pairs.append((_number(pair[0], f"{where}: {key}"), _number(pair[1], f"{where}: {key}")))
    return pairs


def _paragraph_record(video_id: str, video: str, sentences: list[str], segments: list[list[float]],
                      span: list[float], opts: _Options, where: str, extra: dict[str, Any] | None = None
                      ) -> VideoRecord:
    meta = {**(extra or {}), "segments": segments, "span": span, "sentences": sentences}
    start = end = None
    if opts.use_span:
        start, end = span
        if start < 0 or end <= start:
            raise AnnotationError(f"{where}: span {span} is not a valid clip (use_span)")
    return VideoRecord(video_id, video, (" ".join(sentences),), meta, start, end)


def _segment_problems(segments: list[list[float]], duration: float | None, field: str, where: str
                      ) -> list[tuple[str, str]]:
    """``(kind, message)`` for every moment whose times cannot be a clip of the video: ``inverted`` (start
    after end), ``past the end`` (starts at or after the duration) or ``clipped`` (ends after it)."""
    out = []
    for j, (start, end) in enumerate(segments):
        place = f"{where}: {field}[{j}] [{start:g}, {end:g}]"
        if start > end:
            out.append(("inverted", f"{place} is inverted (start after end)"))
        elif duration is not None and duration > 0 and start >= duration:
            out.append(("past the end", f"{place} starts after the video's duration {duration:g}"))
        elif duration is not None and duration > 0 and end > duration:
            out.append(("clipped", f"{place} ends after the video's duration {duration:g}: clipped to it"))
    return out


def _report_segments(path: Path, problems: list[tuple[str, str]], use_span: bool) -> None:
    """With ``use_span``, an inverted moment or one past the end is refused (the first, named); moments
    that end after the video are clipped and counted. Without it, every such moment is counted and
    warned about (the whole video is read; the times stay in ``meta.segments`` as given)."""
    if not problems:
        return
    refused = [message for kind, message in problems if kind != "clipped"]
    if use_span and refused:
        raise AnnotationError(f"{refused[0]}; refused (use_span reads each record's span; {len(refused)} moments "
                              f"of {path} are invalid)")
    counts = {kind: sum(k == kind for k, _ in problems) for kind in ("inverted", "past the end", "clipped")}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    if use_span:
        log.warning("%s: %s moments end after their video's duration and were clipped to it (e.g. %s)", path,
                 counts["clipped"], problems[0][1])
    else:
        log.warning("%s: %d moments have times that are not a clip of their video (%s; e.g. %s). Without use_span "
                    "the whole video is read and these times are only kept in meta.segments; with use_span the "
                    "inverted or past-the-end ones are refused", path, len(problems), summary, problems[0][1])


def _didemo_segment(times: list[tuple[float, float]]) -> list[float]:
    first = sum(t[0] for t in times) / len(times)
    last = sum(t[1] for t in times) / len(times)
    return [first * DIDEMO_CHUNK_SECONDS, (last + 1) * DIDEMO_CHUNK_SECONDS]


def didemo_identity(name: str) -> str:
    """The video a LocalizingMoments file name stands for: the name without its extension, a trailing
    dot tolerated (the files list one Flickr video as ``X.mov`` and ``X.mp4``, or ``X.`` and ``X.mp4``)."""
    name = name.strip().rstrip(".")
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and ext.lower() in DIDEMO_EXTENSIONS else name


DIDEMO_EXTENSIONS = ("mp4", "mov", "avi", "m4v", "3gp", "mpg", "mpeg", "wmv", "webm", "mkv", "flv", "mts")


def _read_didemo(path: Path, opts: _Options) -> list[VideoRecord]:
    """LocalizingMoments' ``*_data.json`` as published: the moments of one video are grouped by the video
    (its ``dl_link`` where given, else its file name without extension) across the file names it is listed
    under; the first name with an extension is the record's file, the others are tried when it is missing."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of moments, got {type(data).__name__}")
    videos: dict[str, dict[str, Any]] = {}  # identity -> names, first entry, sentences, segments
    problems: list[tuple[str, str]] = []
    by_id: dict[str, tuple[str, int, str]] = {}  # video id -> (identity, entry, name)
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        name = _id(_key(entry, "video", where), where, "'video'")
        where = f"{where} (video {name!r})"
        sentence = _caption(_key(entry, "description", where), where)
        times = _pairs(_key(entry, "times", where), where, "times")
        problems += _segment_problems([list(t) for t in times], None, "times", where)
        segment = _didemo_segment(times)
        link = entry.get("dl_link") if isinstance(entry.get("dl_link"), str) and entry["dl_link"].strip() else None
        video_id = didemo_identity(name)
        identity = link.strip() if link else video_id
        earlier = by_id.get(video_id)
        if earlier is not None and earlier[0] != identity:
            raise AnnotationError(f"{where}: the file name {name!r} stands for video {video_id!r}, which entry "
                                  f"{earlier[1]} ({earlier[2]!r}) gives another dl_link; two videos cannot share an id")
        by_id.setdefault(video_id, (identity, i, name))
        video = videos.setdefault(identity, {"names": [], "sentences": [], "segments": [], "entry": i})
        if name not in video["names"]:
            video["names"].append(name)
        video["sentences"].append(sentence)
        video["segments"].append(segment)
    _report_segments(path, problems, opts.use_span)
    records, merged = [], []
    for video in videos.values():
        names = video["names"]
        main = next((n for n in names if not n.endswith(".") and "." in n), names[0])
        video_id = didemo_identity(main)
        if len(names) > 1:
            merged.append(names)
        segments = video["segments"]
        span = [min(s for s, _ in segments), max(e for _, e in segments)]
        extra = {"file_names": names} if len(names) > 1 else None
        record = _paragraph_record(video_id, opts.video(video_id=video_id, video=main), video["sentences"],
                                   segments, span, opts, f"{path}: entry {video['entry']} (video {main!r})", extra)
        if len(names) > 1 and opts.video.pattern == "{video}":
            record = dataclasses.replace(record, meta={**record.meta, "alternative_videos": [
                n for n in names if n != main]})
        records.append(record)
    if merged:
        log.info("%s: %d videos are listed under two or more file names (e.g. %s); their moments were merged, "
                 "%d videos in all", path, len(merged), " and ".join(repr(n) for n in merged[0]), len(records))
    if opts.split_file is not None:
        listed = {didemo_identity(name): line_no for name, line_no in _read_id_list(opts.split_file)}
        known = {r.video_id for r in records}
        missing = [(line_no, name) for name, line_no in listed.items() if name not in known]
        if missing:
            raise AnnotationError(f"{opts.split_file}:{missing[0][0]}: video {missing[0][1]!r} is not in {path}")
        records = [r for r in records if r.video_id in listed]
    check_unique_ids(records, str(path))
    return records


def _activitynet_span(segments: list[list[float]], duration: float | None) -> list[float]:
    start = max(0.0, min(min(s) for s in segments))
    end = max(max(s) for s in segments)
    if duration is not None and duration > 0:
        end = min(end, duration)
    return [start, end]


def _read_activitynet(path: Path, opts: _Options) -> list[VideoRecord]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a JSON object keyed by video id, got {type(data).__name__}")
    records, problems = [], []
    for video_id, entry in data.items():
        where = f"{path}: video {video_id!r}"
        raw = _key(entry, "sentences", where)
        if not isinstance(raw, list) or not raw:
            raise AnnotationError(f"{where}: 'sentences' must be a non-empty list")
        sentences = [_caption(s, f"{where}, sentence {j}") for j, s in enumerate(raw)]
        segments = [list(p) for p in _pairs(_key(entry, "timestamps", where), where, "timestamps")]
        if len(segments) != len(sentences):
            raise AnnotationError(f"{where}: {len(sentences)} sentences but {len(segments)} timestamps")
        duration = _number(entry["duration"], f"{where}: duration") if "duration" in entry else None
        problems += _segment_problems(segments, duration, "timestamps", where)
        extra = {"duration": duration} if duration is not None else {}
        video = opts.video(video_id=video_id, youtube_id=_youtube_id(video_id, prefix="v_"))
        records.append(_paragraph_record(video_id, video, sentences, segments,
                                         _activitynet_span(segments, duration), opts, where, extra))
    _report_segments(path, problems, opts.use_span)
    return records


# ---------------------------------------------------------------------------------------------
# registry and entry point


@dataclasses.dataclass(frozen=True)
class FormatSpec:
    """One annotation format: its reader and what it needs.

    ``captions_file`` / ``split``: "required", "optional" or "unused". ``fields``: the
    placeholders a ``video_pattern`` may use; ``video_pattern``: the default (None: keep the
    paths the file gives).
    """

    reader: Callable[[Path, _Options], list[VideoRecord]]
    description: str
    video_pattern: str | None
    fields: tuple[str, ...] = ("video_id",)
    captions_file: str = "unused"
    split: str = "unused"
    spans: bool = False


FORMATS: dict[str, FormatSpec] = {
    "jsonl": FormatSpec(
        _read_generic, "our generic JSON lines (video_id, video, captions[, start, end])", None,
        fields=("video_id", "video")),
    "msrvtt_csv": FormatSpec(
        _read_msrvtt_csv,
        "CLIP4Clip MSRVTT_train.9k/7k.csv (+ captions_file MSRVTT_data.json) or MSRVTT_JSFUSION_test.csv",
        "{video_id}.mp4", captions_file="optional"),
    "msrvtt_json": FormatSpec(
        _read_msrvtt_json, "MSRVTT_data.json, one split (train / validate / test), all captions",
        "{video_id}.mp4", split="required"),
    "msrvtt_jsonl": FormatSpec(
        _read_msrvtt_jsonl, "CLIP-ViP style train9k.jsonl / test1ka.jsonl (clip_id, text)", "{video_id}.mp4"),
    "msvd": FormatSpec(
        _read_msvd, "MSVD id list (train_list.txt ...) + captions_file raw-captions.pkl", "{video_id}.avi",
        captions_file="required"),
    "didemo": FormatSpec(
        _read_didemo, "DiDeMo {train,val,test}_data.json, descriptions joined into a paragraph; split: optional "
        "list of videos to keep (CLIP4Clip / collaborative experts *_list.txt)", "{video}",
        fields=("video_id", "video"), spans=True, split="optional"),
    "activitynet": FormatSpec(
        _read_activitynet, "ActivityNet Captions train.json / val_1.json / val_2.json, paragraphs",
        "{video_id}.mp4", fields=("video_id", "youtube_id"), spans=True),
    "vatex": FormatSpec(
        _read_vatex, "VATEX JSON (videoID, enCap); split: optional file of ids to keep", "{video_id}.mp4",
        fields=("video_id", "youtube_id"), split="optional"),
    "lsmdc": FormatSpec(
        _read_lsmdc, "LSMDC16 tab-separated annotation files (clip id ... sentence)", "{movie}/{video_id}.avi",
        fields=("video_id", "movie")),
}


#: the reader options of :func:`read_annotations` (and of the data module's ``format_options``), with
#: their help: the one definition the commands that read an annotation file take their options from
FORMAT_OPTIONS = {
    "captions_file": "msrvtt_csv: MSRVTT_data.json; msvd: raw-captions.pkl (or X-Pool's JSON form)",
    "split": "msrvtt_json: the split name; vatex, didemo: a list of the video ids to keep",
    "video_pattern": "the video path from the record's fields, e.g. '{video_id}.mp4' (default: the format's)",
    "use_span": "paragraph formats (didemo, activitynet): read only the union of each video's moments",
}


def describe_formats() -> str:
    """One line per format, for ``--help``."""
    width = max(map(len, FORMATS))
    return "\n".join(f"  {name:<{width}}  {spec.description}" for name, spec in FORMATS.items())


def _check_options(name: str, spec: FormatSpec, captions_file: Any, split: Any, use_span: bool) -> None:
    if spec.captions_file == "required" and captions_file is None:
        raise ValueError(f"format {name!r} needs captions_file ({spec.description})")
    if spec.captions_file == "unused" and captions_file is not None:
        raise ValueError(f"format {name!r} does not use captions_file")
    if spec.split == "required" and split is None:
        raise ValueError(f"format {name!r} needs split ({spec.description})")
    if spec.split == "unused" and split is not None:
        raise ValueError(f"format {name!r} does not use split")
    if use_span and not spec.spans:
        raise ValueError(f"use_span applies to the paragraph formats "
                         f"({', '.join(n for n, s in FORMATS.items() if s.spans)}), not {name!r}")


def read_annotations(path: str | Path, format: str = "jsonl", *, captions_file: str | Path | None = None,
                     split: str | Path | None = None, video_pattern: str | None = None,
                     use_span: bool = False) -> list[VideoRecord]:
    """Read a benchmark annotation file (see :data:`FORMATS`) into generic records.

    ``captions_file``: MSRVTT_data.json for the msrvtt_csv id lists, raw-captions.pkl for msvd.
    ``split``: msrvtt_json's split name; for vatex, a file of video ids to keep (in its order); for
    didemo, a list of the videos to keep (file names or ids, e.g. CLIP4Clip's ``test_list.txt``).
    ``video_pattern``: overrides the format's default path pattern. ``use_span``: paragraph
    formats only, restrict each record to the union of its moments.
    """
    spec = FORMATS.get(format)
    if spec is None:
        raise ValueError(f"unknown annotation format {format!r}; known formats: {', '.join(FORMATS)}")
    _check_options(format, spec, captions_file, split, use_span)
    path = _require_file(path, "annotation file (path / --input)")
    pattern = video_pattern if video_pattern is not None else spec.video_pattern
    opts = _Options(
        captions_file=_require_file(captions_file, "captions_file") if captions_file is not None else None,
        split=str(split) if split is not None else None,
        split_file=_require_file(split, "split (id list file)") if split is not None and spec.split == "optional" else None,
        video=_VideoNamer(pattern, spec.fields, format) if pattern is not None else None,
        use_span=use_span,
    )
    records = spec.reader(path, opts)
    if not records:
        raise AnnotationError(f"{path}: no videos")
    return records
