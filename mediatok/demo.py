"""`make demo`: encode examples/speech.wav with the shipped speech-16k model, decode it, print rate and quality."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech.wav"


def main(argv: list[str] | None = None) -> None:
    """Encode -> .mtk -> decode the example clip; print kbps, quality and speed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default=None, help="folder for the demo's output files")
    parser.add_argument("--model", default="speech-16k")
    parser.add_argument("--input", default=str(EXAMPLE))
    args = parser.parse_args(argv)
    import mediatok
    from mediatok.codecs.audio import load_audio
    from mediatok.codecs.audio.metrics import have_quality_metrics, mel_distance, quality

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mediatok-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    codec = mediatok.load(args.model)
    seconds = sf.info(args.input).duration
    codec.decode(codec.encode(torch.zeros(4 * codec.hop), codec.sample_rate))  # compile the entropy coder first
    t0 = time.perf_counter()
    blob = codec.encode(args.input)
    t1 = time.perf_counter()
    wav, sr = codec.decode(blob)
    t2 = time.perf_counter()
    (workdir / "speech.mtk").write_bytes(blob)
    sf.write(str(workdir / "speech.decoded.wav"), wav.numpy().T.clip(-1, 1), sr)
    print(f"model {codec.name}: nominal {codec.bitrate / 1000:.2f} kbps")
    print(f"{Path(args.input).name}: {seconds:.2f} s -> {len(blob)} bytes = {len(blob) * 8 / seconds / 1000:.2f} kbps "
          f"(entropy-coded tokens + container)")
    print(f"encode {seconds / (t1 - t0):.0f}x real time, decode {seconds / (t2 - t1):.0f}x real time")
    ref = load_audio(args.input, codec.sample_rate)
    deg = wav.mean(dim=0).numpy()
    if have_quality_metrics():
        q = quality(ref, deg, codec.sample_rate)
        print(f"quality: PESQ-WB {q['pesq_wb']:.2f}, PESQ-NB {q['pesq_nb']:.2f}, STOI {q['stoi']:.3f}, mel distance {q['mel']:.3f}")
    else:
        print(f"quality: mel distance {mel_distance(ref, deg, codec.sample_rate):.3f} "
              "(pip install -e '.[bench]' for PESQ and STOI)")
    print(f"wrote {workdir / 'speech.mtk'} and {workdir / 'speech.decoded.wav'}")


if __name__ == "__main__":
    main()
