"""Which stored media file a data value names, refusing anything else.

An item's data may hold any string that starts with /media/ (the import
checks the prefix, not the rest), so a value such as "/media/../../etc/passwd"
or a symlink planted under the media root must never lead an export to read
a file elsewhere. `MediaFiles.resolve` returns a path only for a regular
image file whose real path lies inside the media root.
"""
from __future__ import annotations

import os
from pathlib import Path

MEDIA_PREFIX = "/media/"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


class MediaFiles:
    def __init__(self, media_root: str | os.PathLike) -> None:
        self.root = os.path.realpath(media_root)

    def resolve(self, value: object) -> Path | None:
        """The stored file `value` names, or None when it names no file of ours."""
        if not isinstance(value, str) or not value.startswith(MEDIA_PREFIX):
            return None
        relative = value[len(MEDIA_PREFIX):]
        if not relative or any(c in relative for c in ("\\", "\x00", "?", "#")):
            return None
        parts = relative.split("/")
        if any(part in ("", ".", "..") for part in parts):
            return None
        if os.path.splitext(parts[-1])[1].lower() not in IMAGE_SUFFIXES:
            return None
        # realpath follows symlinks: one that points out of the root is refused below.
        path = os.path.realpath(os.path.join(self.root, *parts))
        if os.path.commonpath([path, self.root]) != self.root or not os.path.isfile(path):
            return None
        return Path(path)


def safe_suffix(value: object) -> str:
    """The image suffix of a data value when it has a known one, else ""."""
    if not isinstance(value, str):
        return ""
    suffix = os.path.splitext(value.split("?", 1)[0])[1].lower()
    return suffix if suffix in IMAGE_SUFFIXES else ""
