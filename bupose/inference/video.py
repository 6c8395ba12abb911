"""Inputs and outputs of ``bupose infer`` beyond single images: video files, webcams, globs, the
per-frame results and the annotated video.

Sources (``expand_sources``): an image file, a folder (its images sorted by name), a video file
(``VIDEO_SUFFIXES``, read with OpenCV), a webcam index (``0``, ``1`` ...) or a glob pattern
(``"frames/*.jpg"``, sorted matches, each taken as above).

Per-frame results (``frame_entry``), one JSON object per frame, empty frames included::

    {"video": "clip.mp4", "frame": 12, "time_s": 0.48,
     "people": [{"keypoints": [x1, y1, v1, ...], "score": 0.93, "track_id": 3}, ...]}

``track_id`` only with ``--track``. Keypoints are in frame pixels, v is the heatmap value.
Damaged videos (``FrameReader``): a frame that cannot be decoded is skipped with a one-line
warning naming its index (it has no entry; later frames keep their index and time); reading stops
at the announced frame count or after ``MAX_BAD_FRAMES`` undecodable frames in a row (a truncated
file, one warning). A file that cannot be opened (empty, not a video) or of which no frame
decodes is a DataError naming it: exit 2, no results file, no annotated video.
The annotated video (``AtomicVideoWriter``) is written under a temporary name beside its final
path and renamed when complete (mp4v codec, the source's frame rate).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_GLOB_CHARS = set("*?[")
MAX_BAD_FRAMES = 25  # undecodable frames in a row after which a video file is taken as ended


@dataclass(frozen=True)
class Source:
    """One input: ``kind`` "image" | "video" | "webcam"; ``path`` (files) or ``index`` (webcam)."""

    kind: str
    path: Path | None = None
    index: int = 0

    @property
    def name(self) -> str:
        """The file name, or ``webcam<index>``."""
        return self.path.name if self.path is not None else f"webcam{self.index}"

    @property
    def stem(self) -> str:
        return self.path.stem if self.path is not None else f"webcam{self.index}"


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _file_source(path: Path) -> Source:
    return Source("video" if is_video(path) else "image", path)


def expand_sources(items: Sequence[str | Path]) -> list[Source]:
    """The sources named by the command-line arguments, in argument order (see module docstring).

    Raises:
        DataError: an argument names nothing (no file, folder, match or webcam index).
    """
    sources: list[Source] = []
    for item in items:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            if not found:
                raise DataError(f"{path}: no images or videos in this folder")
            sources.extend(_file_source(p) for p in found)
        elif path.is_file():
            sources.append(_file_source(path))
        elif text.isdigit():
            sources.append(Source("webcam", None, int(text)))
        elif _GLOB_CHARS & set(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                raise DataError(f"{text}: the pattern matches no file")
            sources.extend(_file_source(p) for p in files)
        else:
            raise DataError(f"{path}: no such image, video, folder, pattern or webcam index")
    return sources


def needs_streaming(items: Sequence[str | Path]) -> bool:
    """True when an argument is a video, a webcam index or a glob (what the plain image loop of
    ``bupose infer`` does not read); folders count when they hold a video."""
    for item in items:
        text, path = str(item), Path(item)
        if path.is_dir():
            if any(is_video(p) for p in path.iterdir()):
                return True
        elif path.is_file():
            if is_video(path):
                return True
        elif text.isdigit() or _GLOB_CHARS & set(text):
            return True
    return False


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``index`` from 0, ``time_s`` from the start, ``image`` (H, W, 3) RGB."""

    index: int
    time_s: float
    image: np.ndarray


class FrameReader:
    """Frames of a video file or webcam, as (H, W, 3) uint8 RGB.

    Args:
        source: a "video" or "webcam" ``Source``.
        max_frames: stop after this many frames (None: until the end / forever for a webcam).

    Attributes:
        fps: frames per second from the container (30 when it reports none, e.g. most webcams).
        size: (W, H) of the frames.
        count: frames announced by the container (0 when unknown).
    """

    def __init__(self, source: Source, max_frames: int | None = None) -> None:
        import cv2

        target: Any = str(source.path) if source.path is not None else source.index
        self.source, self.max_frames = source, max_frames
        if source.path is not None and source.path.is_file() and not source.path.stat().st_size:
            raise DataError(f"{source.name}: empty file (0 bytes), not a video")
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            raise DataError(f"{source.name}: cannot open this video / webcam with OpenCV")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 30.0
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.count = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)

    def __len__(self) -> int:
        n = self.count if self.source.kind == "video" else 0
        return min(n, self.max_frames) if self.max_frames is not None else n

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        start = time.monotonic()
        index, decoded = 0, 0
        failed: list[int] = []  # the undecodable frames just before ``index``
        try:
            while self.max_frames is None or index < self.max_frames:
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    if not self._may_skip(index, failed):
                        break
                    failed.append(index)
                    index += 1
                    continue
                self._warn_skipped(failed)
                failed = []
                if self.source.kind == "webcam":
                    t = time.monotonic() - start
                else:  # the frame's timestamp at a constant rate (as the container declares)
                    t = index / self.fps
                yield Frame(index, round(t, 6), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
                decoded += 1
        finally:
            self._cap.release()
        if decoded == 0 and self.source.kind == "video":
            raise DataError(f"{self.source.name}: no frame could be decoded")
        if failed:
            _warn(f"{self.source.name}: stopped at frame {failed[0]} of {self.count} announced: "
                  "the next frames cannot be decoded (truncated or damaged file?)")

    def _may_skip(self, index: int, failed: list[int]) -> bool:
        """After a failed read of frame ``index``: try the next frame? Only within a video file's
        announced length and before ``MAX_BAD_FRAMES`` failures in a row (a webcam stops)."""
        return self.source.kind == "video" and index < self.count and len(failed) < MAX_BAD_FRAMES

    def _warn_skipped(self, failed: list[int]) -> None:
        """One warning for the undecodable frames ``failed`` (consecutive) before a good one."""
        if failed:
            which = f"frame {failed[0]}" if len(failed) == 1 else f"frames {failed[0]}-{failed[-1]}"
            _warn(f"{self.source.name}: {which} cannot be decoded, skipped")


def _warn(message: str) -> None:
    """A one-line warning on stderr that leaves the progress bar intact."""
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


class AtomicVideoWriter:
    """An annotated video written under ``.<name>.partial<suffix>`` and renamed to ``path`` by
    ``close()``; ``abort()`` removes the partial file. Frames are (H, W, 3) uint8 RGB."""

    def __init__(self, path: Path, fps: float, size_wh: tuple[int, int],
                 fourcc: str = "mp4v") -> None:
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.size = (int(size_wh[0]), int(size_wh[1]))
        self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*fourcc),
                                       float(fps), self.size)
        if not self._writer.isOpened():
            raise DataError(f"{self.path}: OpenCV cannot write {fourcc} video here")
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        import cv2

        if (image.shape[1], image.shape[0]) != self.size:
            raise ValueError(f"frame {image.shape[1]}x{image.shape[0]} != video {self.size}")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path:
        self._writer.release()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.release()
        if self.partial.exists():
            self.partial.unlink()


def frame_entry(source: Source, frame: Frame, poses: Any,
                track_ids: np.ndarray | None = None) -> dict[str, Any]:
    """The JSON entry of one frame (module docstring): its people with keypoints, score and,
    when tracking, track_id."""
    people = []
    for n in range(len(poses)):
        person: dict[str, Any] = {
            "keypoints": [float(v) for v in poses.keypoints[n].reshape(-1)],
            "score": float(poses.scores[n]),
        }
        if track_ids is not None:
            person["track_id"] = int(track_ids[n])
        people.append(person)
    return {"video": source.name, "frame": int(frame.index), "time_s": float(frame.time_s),
            "people": people}


def draw_frame(image: np.ndarray, poses: Any, spec: Any,
               track_ids: np.ndarray | None = None) -> np.ndarray:
    """``image`` (H, W, 3) RGB with the people drawn; with ``track_ids`` each person has the
    colour of its track (stable across frames) and is labelled ``#id``, else its score."""
    import cv2

    from bupose.viz.draw import draw_poses, person_colour

    if track_ids is None or len(poses) == 0:
        return draw_poses(image, poses.keypoints, spec, scores=poses.scores)
    # person n of draw_poses gets person_colour(n): put each person at row track_id
    rows = np.zeros((int(track_ids.max()) + 1, *poses.keypoints.shape[1:]), np.float32)
    rows[track_ids] = poses.keypoints
    out = draw_poses(image, rows, spec)
    t = max(1, int(round(min(out.shape[:2]) / 250)))
    for kps, tid in zip(poses.keypoints, track_ids):
        shown = kps[:, 2] > 0
        if shown.any():
            top = kps[shown][np.argmin(kps[shown, 1]), :2]
            cv2.putText(out, f"#{int(tid)}", (int(top[0]), int(top[1]) - 3 * t),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, person_colour(int(tid)),
                        max(1, t // 2), cv2.LINE_AA)
    return out


Predict = Callable[[list[np.ndarray]], list[Any]]


def process_video(source: Source, predict: Predict, spec: Any, *, batch: int = 1,
                  max_frames: int | None = None, draw: Path | None = None,
                  tracker: Any = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run ``predict`` on every frame of a video / webcam and collect the per-frame entries.

    Args:
        source: a "video" or "webcam" source.
        predict: list of (H, W, 3) RGB frames -> one ``Poses`` per frame (frame pixels).
        spec: the keypoint spec (drawing).
        batch: frames per ``predict`` call.
        max_frames: stop after this many frames.
        draw: write the annotated video to this file (atomically, see ``AtomicVideoWriter``).
        tracker: a ``PoseTracker`` giving ``track_id`` (None: no tracking).
        progress: show a progress bar with frames/s.

    Returns:
        One ``frame_entry`` per frame, in frame order. A webcam stops at Ctrl-C (the frames so
        far are kept and the video is finished).
    """
    from tqdm import tqdm

    from bupose.inference.batching import group_batches

    reader = FrameReader(source, max_frames)
    writer = AtomicVideoWriter(draw, reader.fps, reader.size) if draw is not None else None
    bar = tqdm(total=len(reader) or None, unit="frame", desc=source.name, disable=not progress)
    entries: list[dict[str, Any]] = []
    try:
        for group in group_batches(reader, lambda frame: 0, batch):
            for frame, poses in zip(group, predict([f.image for f in group])):
                ids = None if tracker is None else tracker.update(poses.keypoints, frame.index)
                entries.append(frame_entry(source, frame, poses, ids))
                if writer is not None:
                    writer.write(draw_frame(frame.image, poses, spec, ids))
            bar.update(len(group))
    except KeyboardInterrupt:
        if source.kind != "webcam":
            if writer is not None:
                writer.abort()
            raise
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    return entries
