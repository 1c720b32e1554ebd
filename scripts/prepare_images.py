"""Data recipe for the image codecs: real photographs from Debian packages and scikit-image's wheel.

Sources (../shared/DATA.md; train on them, commit none of their files):

    opencv-doc       usr/share/doc/opencv-doc/**/*.jpg|*.jpeg   BSD-3-Clause / Apache-2.0 (OpenCV documentation)
    mate-backgrounds usr/share/backgrounds/mate/nature/*.jpg     GPL-2+ (test only: never trained on, so the shipped
                                                                 weights owe nothing to it)
    ukui-wallpapers  usr/share/backgrounds/*                    CC-BY-SA-3.0 (Ubuntu Kylin community)
    plasma-workspace-wallpapers  usr/share/wallpapers/<name>/contents/images/<largest>   GPL-2+ (selection only:
                                                                 never trained on; chooses post-training steps
                                                                 such as codebook rebalancing without the test set)
    lomiri-wallpapers-16.04, lomiri-wallpapers-20.04   usr/share/backgrounds/*   CC-BY-4.0, CC-BY-SA-3.0/4.0, CC0-1.0
                     (each file's licence in the packages' copyright file; training only, unpacked into their own
                     folder <raw>/lomiri so that the ukui rule below never sees them)
    scikit-image     skimage/data/<colour photos listed below>  CC0 / public domain (see each loader's docstring)

Run from the repository root::

    python scripts/prepare_images.py            # -> data/images/

Output::

    data/images/{train,val,test}/<name>.png   RGB, long side at most 1024 px (Lanczos downscale, never upscaled)
    data/images/test512/<name>.png            centre 512 x 512 crops of the test photos whose short side >= 512
    data/images/select/<name>.png             the selection photos (plasma-workspace-wallpapers), long side <= 1536
    data/images/SOURCES.tsv                   split, name, package, source path, licence, original size, kept size
    data/images/REJECTED.tsv                  every candidate left out and why

Which files are photographs (decided on each image's pixels, after EXIF rotation, identically for all sources):
  1. opencv-doc: JPEG files only (its 1,700+ PNGs are diagrams, plots and screenshots; a JPEG there is nearly
     always a camera picture). ukui-wallpapers and lomiri-wallpapers: all files. plasma-workspace-wallpapers: the
     largest size of each wallpaper (about half are photographs, the rest renders and paintings that pass rules
     2-4). scikit-image: the colour photographs in PHOTOS.
  2. size: the short side is at least MIN_SIDE (192) pixels (tutorial thumbnails and icons are smaller).
  3. colour: Hasler-Suesstrunk colourfulness >= MIN_COLOURFULNESS (8): grayscale and near-grey pictures are
     left out (the codec is for colour photos; the prototype of issue 11 shows colour diversity matters).
  4. not flat graphics: screenshots, drawings and rendered figures have few colours and exactly flat areas,
     photos have sensor noise. Left out when the 32 most common colours (5 bits per channel) cover more than
     70 % of the pixels, or more than 45 % while over 30 % of the pixels are "still" (no neighbour differs by
     more than 1 in any channel). Checked by eye on contact sheets: photos of smooth scenes (sky, walls) pass
     the first test only through the second; a few tutorial photos with drawn overlays (keypoints, grids)
     remain, which is accepted as mild augmentation.
  5. no duplicates: the same pixels under two names (opencv-doc repeats figures across tutorials) count once,
     judged by a 16 x 16 grey thumbnail (mean absolute difference < 3 / 255 after resizing): the first in
     sorted order is kept.

Fixed split, by name: each kept photo's name is "<source>-<relative path with / -> _>"; split = test if
sha256(name) mod 10 == 0, val if it is 1, else train (about 80 / 10 / 10). It depends only on the name, so
adding or removing photos never moves another photo between splits. Photos committed under examples/ (HELD_OUT)
always go to test: the demo never shows a picture the model was trained on. TRAIN_ONLY_PACKAGES always go to
train: sources added after the first models keep val and test as they were, so figures stay comparable.
"""
from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from debian import unpack_packages  # scripts/debian.py, beside this script

PACKAGES = ("opencv-doc", "ukui-wallpapers", "mate-backgrounds", "plasma-workspace-wallpapers")
OPENCV_DIR = "usr/share/doc/opencv-doc"
WALLPAPER_DIR = "usr/share/backgrounds"
MATE_DIR = "usr/share/backgrounds/mate/nature"
PLASMA_DIR = "usr/share/wallpapers"
# Ubuntu Touch's wallpaper-contest photographs (mostly landscapes and nature, 2-7 MP): more scenes of the kind the
# test wallpapers show, where image-vq v2 left codes unused. Unpacked apart: they share usr/share/backgrounds.
LOMIRI_PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
LOMIRI_RAW = "lomiri"
LICENCES = {"opencv-doc": "BSD-3-Clause/Apache-2.0 (OpenCV docs)", "ukui-wallpapers": "CC-BY-SA-3.0",
            "mate-backgrounds": "GPL-2+ (test only)",
            "plasma-workspace-wallpapers": "GPL-2+ (selection only)",
            "lomiri-wallpapers": "CC-BY-4.0 / CC-BY-SA-3.0 / CC-BY-SA-4.0 / CC0-1.0 (per file: copyright file)",
            "skimage": "CC0/public domain"}
# scikit-image's colour photographs (file in skimage/data, licence from the loader's docstring)
PHOTOS = {"astronaut.png": "public domain (NASA)", "coffee.png": "CC0 (Rachel Michetti)",
          "chelsea.png": "CC0 (Stefan van der Walt)", "rocket.jpg": "public domain (SpaceX)",
          "motorcycle_left.png": "public domain (Middlebury stereo)", "motorcycle_right.png":
          "public domain (Middlebury stereo)", "hubble_deep_field.jpg": "public domain (NASA)",
          "retina.jpg": "CC0 (Häggström)", "ihc.png": "no known copyright restrictions"}
MIN_SIDE = 192
MIN_COLOURFULNESS = 8.0
MAX_FLAT_SHARE = (0.45, 0.70)  # top-32 colour share allowed with / without exactly flat areas
MAX_STILL_SHARE = 0.30
MAX_LONG_SIDE = 1024
# Test-only photos keep more pixels: issue 11 measures codebook use over held-out images giving >= 10 tokens per
# code (16384 codes at f8 need 10.5 MP); at 1536 px the twelve MATE photos give about 17 MP.
TEST_ONLY_PACKAGES = {"mate-backgrounds": 1536}
# A third held-out set, from another source, for choices made after training (which steps to run on a trained
# network, with what strength) so that the test photos are looked at once, for the final table.
SELECT_ONLY_PACKAGES = {"plasma-workspace-wallpapers": 1536}
TRAIN_ONLY_PACKAGES = {"lomiri-wallpapers"}
TEST_CROP = 512
HELD_OUT = {"skimage-chelsea"}  # examples/chelsea.png


@dataclass(frozen=True)
class Candidate:
    """One source file that may be a photograph."""

    name: str  # unique output stem
    package: str
    path: Path
    licence: str


def extract(raw_dir: Path) -> Path:
    """Download and unpack the Debian packages into raw_dir (once); return raw_dir."""
    if not all((raw_dir / d).is_dir() for d in (OPENCV_DIR, WALLPAPER_DIR, MATE_DIR, PLASMA_DIR)):
        unpack_packages(PACKAGES, raw_dir)
    if not (raw_dir / LOMIRI_RAW / WALLPAPER_DIR).is_dir():
        unpack_packages(LOMIRI_PACKAGES, raw_dir / LOMIRI_RAW)
    return raw_dir


# Packages whose photos are plain files in one folder: (name prefix, package, folder under the raw dir, searched
# recursively, suffixes). ukui's folder is read at the top level only: mate/ and other packages' folders below it
# are not ukui's. The names (and so the splits) come from the prefix and the path below the folder.
PLAIN_SOURCES = (
    ("opencv", "opencv-doc", OPENCV_DIR, True, (".jpg", ".jpeg")),
    ("ukui", "ukui-wallpapers", WALLPAPER_DIR, False, (".jpg", ".jpeg", ".png")),
    ("lomiri", "lomiri-wallpapers", f"{LOMIRI_RAW}/{WALLPAPER_DIR}", False, (".jpg", ".jpeg", ".png")),
    ("mate", "mate-backgrounds", MATE_DIR, False, (".jpg", ".jpeg")),
)


def candidates(raw_dir: Path) -> list[Candidate]:
    """Every file that rule 1 admits, in a fixed order."""
    import skimage

    found = []
    for prefix, package, folder, recursive, suffixes in PLAIN_SOURCES:
        root = raw_dir / folder
        for p in sorted(root.rglob("*") if recursive else root.iterdir()):
            if p.is_file() and p.suffix.lower() in suffixes:
                found.append(Candidate(_name(prefix, p.relative_to(root)), package, p, LICENCES[package]))
    plasma = raw_dir / PLASMA_DIR
    for folder in sorted(p for p in plasma.iterdir() if (p / "contents" / "images").is_dir()):
        # every wallpaper comes in several sizes of one picture: the largest stands for it
        sizes = [p for p in (folder / "contents" / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
        if sizes:
            largest = max(sizes, key=lambda p: (_pixels(p), p.name))
            found.append(Candidate(f"plasma-{folder.name}", "plasma-workspace-wallpapers", largest,
                                   LICENCES["plasma-workspace-wallpapers"]))
    data = Path(skimage.__file__).parent / "data"
    for file, licence in PHOTOS.items():
        found.append(Candidate(_name("skimage", Path(file)), "skimage", data / file, licence))
    return found


def _pixels(path: Path) -> int:
    with Image.open(path) as im:
        return im.size[0] * im.size[1]


def _name(source: str, rel: Path) -> str:
    return f"{source}-{rel.with_suffix('').as_posix().replace('/', '_')}"


def split_of(name: str, package: str = "") -> str:
    """The fixed split of a photo by its name: sha256(name) mod 10 == 0 -> test, == 1 -> val, else train;
    HELD_OUT names and TEST_ONLY_PACKAGES always test, SELECT_ONLY_PACKAGES always select, TRAIN_ONLY_PACKAGES
    always train."""
    if name in HELD_OUT or package in TEST_ONLY_PACKAGES:
        return "test"
    if package in SELECT_ONLY_PACKAGES:
        return "select"
    if package in TRAIN_ONLY_PACKAGES:
        return "train"
    r = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 10
    return "test" if r == 0 else "val" if r == 1 else "train"


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003): std and mean of the rg / yb opponent channels (0 for grey images)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def flat_share(rgb: np.ndarray, top: int = 32) -> float:
    """Share of pixels covered by the `top` most common colours at 5 bits per channel."""
    q = (rgb >> 3).astype(np.int32)
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    counts = np.bincount(codes.reshape(-1), minlength=1 << 15)
    return float(np.sort(counts)[-top:].sum() / codes.size)


def load_rgb(path: Path) -> np.ndarray:
    """A file as uint8 (H, W, 3), EXIF orientation applied, alpha composited on white."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return np.asarray(im.convert("RGB"))


def verdict(rgb: np.ndarray) -> str | None:
    """Why an image is not kept as a photograph (rules 2-4), or None when it is."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        return f"small ({w}x{h})"
    small = np.asarray(Image.fromarray(rgb).resize((min(w, 512), min(h, 512)), Image.BILINEAR)) if max(h, w) > 512 else rgb
    c = colourfulness(small)
    if c < MIN_COLOURFULNESS:
        return f"grey (colourfulness {c:.1f})"
    f = flat_share(rgb)
    if f > MAX_FLAT_SHARE[1] or (f > MAX_FLAT_SHARE[0] and still_share(rgb) > MAX_STILL_SHARE):
        return f"flat graphics (top-32 colours cover {100 * f:.0f} %)"
    return None


def still_share(rgb: np.ndarray) -> float:
    """Share of pixels whose right and lower neighbours differ by at most 1 in every channel."""
    x = rgb.astype(np.int16)
    dx = np.abs(np.diff(x, axis=1)).max(-1)[:-1, :]  # (H - 1, W - 1)
    dy = np.abs(np.diff(x, axis=0)).max(-1)[:, :-1]  # (H - 1, W - 1)
    return float(((dx <= 1) & (dy <= 1)).mean())


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """16 x 16 grey thumbnail in [0, 1] for duplicate detection."""
    return np.asarray(Image.fromarray(rgb).convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32) / 255


def downscale(rgb: np.ndarray, long_side: int = MAX_LONG_SIDE) -> np.ndarray:
    """Lanczos-downscale so that the long side is at most long_side (never upscale)."""
    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    if s >= 1:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS))


def centre_crop(rgb: np.ndarray, size: int) -> np.ndarray | None:
    """The centre size x size crop, or None when the image is smaller."""
    h, w = rgb.shape[:2]
    if min(h, w) < size:
        return None
    top, left = (h - size) // 2, (w - size) // 2
    return rgb[top : top + size, left : left + size]


def main(argv: list[str] | None = None) -> None:
    """Build data/images from the sources above and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=Path("data/raw-images"), help="where the packages are unpacked")
    parser.add_argument("--out", type=Path, default=Path("data/images"), help="output folder")
    args = parser.parse_args(argv)
    raw = extract(args.raw)
    for split in ("train", "val", "test", "test512", "select"):
        (args.out / split).mkdir(parents=True, exist_ok=True)
        for old in (args.out / split).glob("*.png"):
            old.unlink()  # a re-run with changed rules must not leave stale photos behind
    kept: list[tuple[str, Candidate, tuple[int, int], tuple[int, int]]] = []
    rejected: list[tuple[Candidate, str]] = []
    thumbs: list[np.ndarray] = []
    for cand in candidates(raw):
        try:
            rgb = load_rgb(cand.path)
        except Exception as e:  # noqa: BLE001 - a broken file in a package is skipped, and said
            rejected.append((cand, f"unreadable ({type(e).__name__})"))
            continue
        why = verdict(rgb)
        if why is None:
            t = thumbnail(rgb)
            if any(float(np.abs(t - u).mean()) < 3 / 255 for u in thumbs):
                why = "duplicate"
            else:
                thumbs.append(t)
        if why is not None:
            rejected.append((cand, why))
            continue
        split = split_of(cand.name, cand.package)
        out = downscale(rgb, {**TEST_ONLY_PACKAGES, **SELECT_ONLY_PACKAGES}.get(cand.package, MAX_LONG_SIDE))
        Image.fromarray(out).save(args.out / split / f"{cand.name}.png")
        if split == "test" and (crop := centre_crop(out, TEST_CROP)) is not None:
            Image.fromarray(crop).save(args.out / "test512" / f"{cand.name}.png")
        kept.append((split, cand, rgb.shape[1::-1], out.shape[1::-1]))
    with open(args.out / "SOURCES.tsv", "w") as f:
        f.write("split\tname\tpackage\tsource\tlicence\toriginal_wxh\tkept_wxh\n")
        for split, c, (w0, h0), (w1, h1) in kept:
            f.write(f"{split}\t{c.name}\t{c.package}\t{c.path.relative_to(raw) if c.package != 'skimage' else 'skimage/data/' + c.path.name}"
                    f"\t{c.licence}\t{w0}x{h0}\t{w1}x{h1}\n")
    with open(args.out / "REJECTED.tsv", "w") as f:
        f.write("name\tpackage\twhy\n")
        for c, why in rejected:
            f.write(f"{c.name}\t{c.package}\t{why}\n")
    print(f"candidates {len(kept) + len(rejected)}, kept {len(kept)}, rejected {len(rejected)}")
    reasons: dict[str, int] = {}
    for _, why in rejected:
        key = why.split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    print("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    for split in ("train", "val", "test", "select"):
        rows = [k for k in kept if k[0] == split]
        mp = sum(w * h for _, _, _, (w, h) in rows) / 1e6
        by_pkg = {p: sum(1 for k in rows if k[1].package == p) for p in LICENCES}
        print(f"{split:5s} {len(rows):4d} photos, {mp:6.1f} MP kept  ({', '.join(f'{p} {n}' for p, n in by_pkg.items())})")
    print(f"test512 {len(list((args.out / 'test512').glob('*.png')))} centre crops of 512 x 512")


if __name__ == "__main__":
    main()
