"""A folder-per-label gallery (`<root>/<label>/<image>`) as labelled images."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.core.errors import DatasetError, SourceError
from pipeline.datasets.base import LabelledImage, check_layout
from pipeline.index.sources import list_source

FOLDER_LAYOUT = "a folder per label: <root>/<label>/<image> (nested labels become 'a/b')"


def load_folder(root: str | os.PathLike[str]) -> list[LabelledImage]:
    """List every image under `root`, labelled by its sub-folder path relative to `root`, sorted by path.

    Images directly in `root` have no label and are left out; files that are not images by name are ignored.

    Raises:
        DatasetError: the root is not a folder, or no image sits in a sub-folder.
    """
    path = Path(root)
    check_layout(path, (), FOLDER_LAYOUT)
    try:
        listing = list_source(path)
    except SourceError as e:
        raise DatasetError(str(e)) from e
    images = [LabelledImage(r.path, r.label) for r in listing.records if r.label is not None]
    if not images:
        unlabelled = len(listing.records)
        raise DatasetError(
            f"{path}: no images in sub-folders ({unlabelled} at the top level) — expected {FOLDER_LAYOUT}"
        )
    return images
