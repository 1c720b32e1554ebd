"""Loudness normalisation and training-time augmentation of speech crops (mediatok.train.audio.augment)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mediatok.train.audio import AudioAugment, AudioDataModule, ClipArray, RandomCrops, normalize_loudness
from mediatok.train.audio.augment import _biquad, colored_noise, loudness_lufs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "codecs"))
from audio_helpers import speechlike  # noqa: E402

SR = 16000


def _response_db(b: list[float], a: list[float], f: float) -> float:
    z = np.exp(-1j * 2 * np.pi * f / SR)
    return float(20 * np.log10(abs(np.polyval(b[::-1], z) / np.polyval(a[::-1], z))))


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(10 * np.log10(spec[(f >= lo) & (f < hi)].sum()))


def test_normalize_loudness_reaches_the_target_whatever_the_input_level():
    x = speechlike(3.0).numpy()
    for scale in (0.05, 1.0, 4.0):
        y = normalize_loudness(x * scale, SR, -23.0)
        assert abs(loudness_lufs(y, SR) + 23.0) < 0.05
        assert np.allclose(y, normalize_loudness(x, SR, -23.0), atol=1e-6)  # the level of the source is gone


def test_normalize_loudness_never_clips_and_leaves_silence_alone():
    x = np.zeros(SR, dtype=np.float32)
    x[100] = 0.5  # one click: very quiet overall, so the loudness gain alone would clip it
    y = normalize_loudness(x, SR, -14.0)
    assert abs(float(np.abs(y).max()) - 0.99) < 1e-6
    assert np.array_equal(normalize_loudness(np.zeros(SR, np.float32), SR), np.zeros(SR, np.float32))
    assert math.isnan(loudness_lufs(np.zeros(SR, np.float32), SR))


def test_short_clips_fall_back_to_rms_loudness():
    x = 0.1 * np.ones(SR // 10, dtype=np.float32)  # 0.1 s: shorter than one 400 ms gating block
    assert loudness_lufs(x, SR) == pytest.approx(-20.691, abs=1e-3)
    with pytest.raises(ValueError, match="1-d"):
        loudness_lufs(np.zeros((2, 10), np.float32), SR)


@pytest.mark.parametrize("kind,f,expected", [("peak", 1000.0, 6.0), ("lowshelf", 10.0, 6.0), ("highshelf", 7900.0, 6.0),
                                             ("peak", 60.0, 0.0), ("lowshelf", 7000.0, 0.0)])
def test_biquads_have_the_cookbook_responses(kind, f, expected):
    f0 = {"peak": 1000.0, "lowshelf": 200.0, "highshelf": 3000.0}[kind]
    b, a = _biquad(kind, f0, 6.0, 1.0 if kind == "peak" else 0.707, SR)
    assert _response_db(b, a, f) == pytest.approx(expected, abs=0.3)


def test_colored_noise_is_unit_rms_and_tilts_with_the_exponent():
    rng = np.random.default_rng(0)
    white, pink, brown = (colored_noise(SR, e, rng) for e in (0.0, 1.0, 2.0))
    assert all(abs(float(np.sqrt(np.mean(n**2))) - 1) < 1e-6 for n in (white, pink, brown))
    tilt = [_band_db(n, 50, 500) - _band_db(n, 4000, 7500) for n in (white, pink, brown)]
    assert tilt[0] < 0 < tilt[1] < tilt[2]  # white: more power in the wider high band; pink and brown: less


def test_augment_is_reproducible_and_keeps_shape_and_peak():
    x = speechlike(1.0).numpy()
    aug = AudioAugment(eq_prob=1.0, noise_prob=1.0)
    a = aug(x, np.random.default_rng(7))
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.array_equal(a, aug(x, np.random.default_rng(7)))
    assert not np.array_equal(a, aug(x, np.random.default_rng(8)))
    loud = AudioAugment(gain_db=(30.0, 30.0))(x, np.random.default_rng(0))
    assert abs(float(np.abs(loud).max()) - 0.99) < 1e-6  # the gain asked for would clip: capped at the peak


def test_each_stage_does_what_it_says():
    x = speechlike(1.0).numpy()
    gains = [float(np.abs(AudioAugment(eq_prob=0, noise_prob=0)(x, np.random.default_rng(s))).max()
                   / np.abs(x).max()) for s in range(50)]
    assert 10 ** (-15 / 20) - 1e-6 <= min(gains) < max(gains) <= 10 ** (8 / 20) + 1e-6
    same = AudioAugment(gain_db=(0.0, 0.0), eq_prob=0, noise_prob=0)(x, np.random.default_rng(0))
    assert np.allclose(same, x)
    noisy = AudioAugment(gain_db=(0.0, 0.0), eq_prob=0, noise_prob=1.0, snr_db=(30.0, 30.0))(x, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((noisy - x).astype(np.float64) ** 2))
    assert snr == pytest.approx(30.0, abs=0.1)
    spectra = []
    for seed in range(5):
        eq = AudioAugment(gain_db=(0.0, 0.0), eq_prob=1.0, noise_prob=0)(x, np.random.default_rng(seed))
        spectra.append(_band_db(eq, 2000, 6000) - _band_db(eq, 100, 1000))
    assert max(abs(s - (_band_db(x, 2000, 6000) - _band_db(x, 100, 1000))) for s in spectra) > 1.0  # tilt changed


def test_augment_rejects_bad_settings():
    with pytest.raises(ValueError, match="gain_db"):
        AudioAugment(gain_db=(3.0, -3.0))
    with pytest.raises(ValueError, match="noise_prob"):
        AudioAugment(noise_prob=1.5)
    with pytest.raises(ValueError, match="1-d"):
        AudioAugment()(np.zeros((1, 100), np.float32), np.random.default_rng(0))


def _prepared(tmp_path) -> Path:
    root = tmp_path / "d"
    root.mkdir()
    clips = [speechlike(1.5, seed=i).numpy() for i in range(3)]
    for split in ("train", "val"):
        np.save(root / f"{split}.npy", np.concatenate(clips))
        np.save(root / f"{split}_offsets.npy", np.cumsum([0] + [len(c) for c in clips]).astype(np.int64))
    return root


def test_random_crops_use_the_augment_only_when_given(tmp_path):
    clips = ClipArray(_prepared(tmp_path), "train")
    torch.manual_seed(0)
    plain = RandomCrops(clips, 8000, 4)[0]
    torch.manual_seed(0)
    again = RandomCrops(clips, 8000, 4, augment=None)[0]
    torch.manual_seed(0)
    augmented = RandomCrops(clips, 8000, 4, augment=AudioAugment(eq_prob=1.0, noise_prob=1.0))[0]
    assert torch.equal(plain, again) and augmented.shape == plain.shape == (1, 8000)
    assert not torch.allclose(augmented / augmented.abs().max(), plain / plain.abs().max(), atol=1e-3)


def test_datamodule_augments_training_crops_only_and_records_it(tmp_path):
    root = _prepared(tmp_path)
    off = AudioDataModule(root=str(root), segment=3200, batch_size=4, epoch_size=8, val_segment=3200, val_clips=2,
                          num_workers=0)
    assert "augment" not in off.hparams  # runs without augmentation keep their recorded hyper-parameters
    aug = AudioAugment(noise_prob=1.0)
    on = AudioDataModule(root=str(root), segment=3200, batch_size=4, epoch_size=8, val_segment=3200, val_clips=2,
                         num_workers=0, augment=aug)
    assert on.hparams.augment == aug
    for dm in (off, on):
        dm.setup("fit")
    assert on.train_set.augment == aug and off.train_set.augment is None
    batch = next(iter(on.train_dataloader()))
    assert batch.shape == (4, 1, 3200) and batch.abs().max() <= 0.99
    assert torch.equal(next(iter(on.val_dataloader())), next(iter(off.val_dataloader())))


def test_a_config_turns_augmentation_on(tmp_path):
    from mediatok.train.cli import train_main

    root = Path(__file__).resolve().parents[2]
    extra = tmp_path / "augment.yaml"
    extra.write_text("data:\n  init_args:\n    augment:\n      gain_db: [-12, 6]\n      noise_prob: 0.2\n")
    cli = train_main(["--config", str(root / "configs/audio/speech-16k-cpu.yaml"), "--config", str(extra),
                      "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.logger", "false"], run=False)
    assert cli.datamodule.augment == AudioAugment(gain_db=(-12.0, 6.0), noise_prob=0.2)
