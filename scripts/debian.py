"""Fetch Debian packages' files without installing them: the data recipes' one way to real media offline."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def unpack_packages(packages: list[str] | tuple[str, ...], raw_dir: Path) -> None:
    """`apt-get download` each package and `dpkg -x` it into raw_dir (needs `apt-get update` once on a new machine)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *packages], cwd=tmp, check=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(raw_dir)], check=True)
