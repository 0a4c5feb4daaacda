"""Solutions to appendix A's exercises — try first, then compare."""
import os
from pathlib import Path


def latest_complete(run_folder: Path) -> Path | None:
    "The newest complete checkpoint folder of a run (by step number), or None."
    root = Path(run_folder)/"checkpoints"
    if not root.is_dir(): return None
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p/"state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)  # numbers, not names: step-1000000 > step-999999


def write_atomically(path: Path, data: bytes) -> None:
    "Replace the file `path` with `data` all at once: a reader or a kill sees the old file or the new one."
    path = Path(path)
    tmp = path.parent/f".{path.name}.tmp"  # beside the target: the rename stays on one file system
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush(); os.fsync(f.fileno())   # the data reaches the disk before the rename does
    os.replace(tmp, path)                 # atomic: the old file or the new one
