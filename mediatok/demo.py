"""`make demo`: encode -> .mtk -> decode each media's bundled example with its shipped model; print rate and quality.

    examples/speech.wav  with speech-16k (kbps, PESQ / STOI with the bench extra, x real time)
    examples/chelsea.png with image-vq   (bits per pixel, PSNR, MS-SSIM, megapixels/s)
    examples/chelsea.png with image-wavelet at each of its rates
    examples/wheel.obj   with shape-sdf  (bytes, x smaller than a float32 64^3 SDF, volumetric IoU, Chamfer)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

import mediatok

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE = EXAMPLES / "speech.wav"
IMAGE_EXAMPLE = EXAMPLES / "chelsea.png"
SHAPE_EXAMPLE = EXAMPLES / "wheel.obj"


def main(argv: list[str] | None = None) -> None:
    """Encode -> .mtk -> decode the examples; print rate, quality and speed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="folder for the demo's output files")
    parser.add_argument("--model", default="speech-16k", help="speech model")
    parser.add_argument("--input", default=str(EXAMPLE), help="speech file")
    parser.add_argument("--image-model", default="image-vq", help="image model ('' to skip the image demo)")
    parser.add_argument("--image", default=str(IMAGE_EXAMPLE), help="image file")
    parser.add_argument("--wavelet-model", default="image-wavelet",
                        help="continuous-latent image model, shown at each of its rates ('' to skip)")
    parser.add_argument("--shape-model", default="shape-sdf", help="3D shape model ('' to skip the shape demo)")
    parser.add_argument("--shape", default=str(SHAPE_EXAMPLE), help="mesh file")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mediatok-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    speech_demo(args.model, Path(args.input), workdir)
    for model, demo, example, what in ((args.image_model, image_demo, args.image, "image"),
                                       (args.wavelet_model, wavelet_demo, args.image, "wavelet"),
                                       (args.shape_model, shape_demo, args.shape, "shape")):
        if model:
            print()
            if model in mediatok.list_models() or Path(model).is_dir():
                demo(model, Path(example), workdir)
            else:
                print(f"{what} demo skipped: no model {model!r} is shipped in this checkout")


def speech_demo(model: str, path: Path, workdir: Path) -> None:
    """Encode -> .mtk -> decode one speech file; print kbps, quality and speed."""
    from mediatok.codecs.audio import load_audio
    from mediatok.codecs.audio.metrics import have_quality_metrics, mel_distance, quality

    codec = mediatok.load(model)
    seconds = sf.info(path).duration
    codec.decode(codec.encode(torch.zeros(4 * codec.hop), codec.sample_rate))  # compile the entropy coder first
    t0 = time.perf_counter()
    blob = codec.encode(path)
    t1 = time.perf_counter()
    wav, sr = codec.decode(blob)
    t2 = time.perf_counter()
    (workdir / "speech.mtk").write_bytes(blob)
    sf.write(str(workdir / "speech.decoded.wav"), wav.numpy().T.clip(-1, 1), sr)
    print(f"model {codec.name}: nominal {codec.bitrate / 1000:.2f} kbps")
    print(f"{Path(path).name}: {seconds:.2f} s -> {len(blob)} bytes = {len(blob) * 8 / seconds / 1000:.2f} kbps "
          f"(entropy-coded tokens + container)")
    print(f"encode {seconds / (t1 - t0):.0f}x real time, decode {seconds / (t2 - t1):.0f}x real time")
    ref = load_audio(path, codec.sample_rate)
    deg = wav.mean(dim=0).numpy()
    if have_quality_metrics():
        q = quality(ref, deg, codec.sample_rate)
        print(f"quality: PESQ-WB {q['pesq_wb']:.2f}, PESQ-NB {q['pesq_nb']:.2f}, STOI {q['stoi']:.3f}, mel distance {q['mel']:.3f}")
    else:
        print(f"quality: mel distance {mel_distance(ref, deg, codec.sample_rate):.3f} "
              "(pip install -e '.[bench]' for PESQ and STOI)")
    print(f"wrote {workdir / 'speech.mtk'} and {workdir / 'speech.decoded.wav'}")


def image_demo(model: str, path: Path, workdir: Path) -> None:
    """Encode -> .mtk -> decode one image; print bits per pixel, PSNR, MS-SSIM and speed."""
    from mediatok.codecs.image import read_image, write_image
    from mediatok.codecs.image.evaluate import ms_ssim, psnr

    codec = mediatok.load(model)
    image = read_image(path)
    pixels = image.shape[0] * image.shape[1]
    codec.decode(codec.encode(image[:16, :16]))  # compile the entropy coder first
    t0 = time.perf_counter()
    blob = codec.encode(image)
    t1 = time.perf_counter()
    decoded = codec.decode(blob)
    t2 = time.perf_counter()
    (workdir / "image.mtk").write_bytes(blob)
    write_image(workdir / "image.decoded.png", decoded)
    print(f"model {codec.name}: nominal {codec.bitrate:.3f} bit/pixel ({codec.codebook_size} codes, "
          f"{codec.model.downsample} x {codec.model.downsample} pixels a token)")
    print(f"{path.name}: {image.shape[1]} x {image.shape[0]} -> {len(blob)} bytes = {len(blob) * 8 / pixels:.3f} bit/pixel "
          "(entropy-coded tokens + container)")
    print(f"encode {pixels / 1e6 / (t1 - t0):.2f} MP/s, decode {pixels / 1e6 / (t2 - t1):.2f} MP/s")
    print(f"quality: PSNR {psnr(image, decoded):.2f} dB, MS-SSIM {ms_ssim(image, decoded):.4f}")
    print(f"wrote {workdir / 'image.mtk'} and {workdir / 'image.decoded.png'}")
    # Lower rates from the same network: a nested codebook, and the photo coded at half size (the header says which).
    nested = getattr(codec.model.cfg, "nested_sizes", ())
    lower = [(f"{nested[-1]} codes", {"codebook_size": nested[-1]})] if nested else []
    if 2 in getattr(codec, "downscales", ()):
        lower.append(("2x-down", {"downscale": 2}))
    for label, options in lower:
        small = codec.encode(image, **options)
        y = mediatok.decode(small)
        print(f"  {label}: {len(small)} bytes = {len(small) * 8 / pixels:.3f} bit/pixel, PSNR {psnr(image, y):.2f} dB, "
              f"MS-SSIM {ms_ssim(image, y):.4f}  (codec.encode(x, {', '.join(f'{k}={v}' for k, v in options.items())}))")


def wavelet_demo(model: str, path: Path, workdir: Path) -> None:
    """Encode -> .mtk -> decode one image at each rate of a wavelet codec; print bpp, quality and speed."""
    from mediatok.codecs.image import read_image, write_image
    from mediatok.codecs.image.evaluate import ms_ssim, psnr

    codec = mediatok.load(model)
    image = read_image(path)
    pixels = image.shape[0] * image.shape[1]
    codec.decode(codec.encode(image[:16, :16]))  # compile the transform and the entropy coder first
    cfg = codec.model.cfg
    print(f"model {codec.name}: {cfg.latent_channels} latent channels a {codec.stride} x {codec.stride} block, "
          f"{codec.num_rates} rates")
    for r in range(codec.num_rates):
        t0 = time.perf_counter()
        blob = codec.encode(image, rate=r)
        t1 = time.perf_counter()
        decoded = codec.decode(blob)
        t2 = time.perf_counter()
        out = workdir / f"wavelet.rate{r}.png"
        write_image(out, decoded)
        print(f"rate {r}: {len(blob)} bytes = {len(blob) * 8 / pixels:.3f} bit/pixel, PSNR {psnr(image, decoded):.2f} dB, "
              f"MS-SSIM {ms_ssim(image, decoded):.4f}; encode {pixels / 1e6 / (t1 - t0):.1f} MP/s, "
              f"decode {pixels / 1e6 / (t2 - t1):.2f} MP/s -> {out.name}")


def shape_demo(model: str, path: Path, workdir: Path) -> None:
    """Encode -> .mtk -> decode one mesh; print bytes, compression, IoU at 64^3 and Chamfer distance."""
    from mediatok.codecs.volume import read_mesh, write_mesh
    from mediatok.codecs.volume.evaluate import SDF_BYTES, measure, occupancy
    from mediatok.codecs.volume.io import as_mesh_arrays
    from mediatok.codecs.volume.sdf import frame_of

    codec = mediatok.load(model)
    original = as_mesh_arrays(read_mesh(path))
    t0 = time.perf_counter()
    blob = codec.encode(path)
    t1 = time.perf_counter()
    mesh = codec.decode(blob)
    t2 = time.perf_counter()
    (workdir / "shape.mtk").write_bytes(blob)
    write_mesh(workdir / "shape.decoded.obj", mesh)
    side = codec.model.cfg.token_side
    print(f"model {codec.name}: {side}^3 tokens of {codec.codebook_size} codes for a {codec.resolution}^3 SDF")
    print(f"{path.name}: {len(original[1])} faces, {path.stat().st_size} bytes -> {len(blob)} bytes "
          f"({SDF_BYTES / len(blob):.0f}x smaller than a float32 64^3 SDF, {path.stat().st_size / len(blob):.0f}x than "
          "the mesh file)")
    print(f"encode {t1 - t0:.2f} s (SDF included), decode {t2 - t1:.2f} s (marching cubes included)")
    frame = frame_of(original[0])
    truth = {r: occupancy(original, frame, r) for r in (64, 128)}
    m = measure(original, truth, (mesh.vertices, mesh.faces), frame)
    print(f"quality: IoU {m['iou64']:.4f} at 64^3, {m['iou128']:.4f} at 128^3; Chamfer {m['chamfer']:.5f} of the "
          "shape's size")
    print(f"wrote {workdir / 'shape.mtk'} and {workdir / 'shape.decoded.obj'} (in the input's coordinates)")


if __name__ == "__main__":
    main()
