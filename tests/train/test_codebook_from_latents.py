"""CodebookFromLatents: a fresh run's LC codebook starts on k-means centres of the encoder's latents."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig
from mediatok.train.audio import CodebookFromLatents

TINY = dict(latent_dim=16, enc_dim=32, enc_depth=1, dec_dim=32, dec_depth=1, up_dim=32, up_depth=1, codebook_size=64,
            quantizer="lc", num_groups=1, num_quantizers=1)


class Crops:
    """Stands in for RandomCrops: `count` deterministic 0.2 s crops of noise with varying spectra."""

    segment = 3200

    def __init__(self, count: int = 40) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(k)
        x = torch.randn(self.segment, generator=g)
        x = torch.cumsum(x, 0) * (k % 5) / 50 + x  # a different tilt per crop: latents that spread out
        return (0.1 * x / x.abs().max())[None]


def _run(codec: AudioCodec, steps: int = 0, crops: Crops | None = None, seconds: float = 8.0, **hparams) -> None:
    module = SimpleNamespace(codec=codec, steps=torch.tensor(steps), device=torch.device("cpu"), hparams=hparams)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(train_set=crops or Crops()))
    CodebookFromLatents(seconds=seconds, iters=5).on_fit_start(trainer, module)


def _latents(codec: AudioCodec, crops: Crops) -> torch.Tensor:
    with torch.no_grad():
        z = codec.encoder(torch.stack([crops[k] for k in range(len(crops))]))  # (B, D, n)
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def test_fresh_run_seeds_every_code_on_the_latents():
    torch.manual_seed(0)
    codec = AudioCodec(AudioCodecConfig(**TINY))
    crops = Crops()
    rows = _latents(codec, crops)
    random_codes = codec.quantizer.codebook.codes().detach().clone()
    _run(codec, crops=crops)
    cb = codec.quantizer.codebook
    assert bool(cb.initialized)
    # The projector maps the latents onto themselves, so the codewords are the k-means centres themselves.
    torch.testing.assert_close(cb.projector.weight, torch.eye(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(cb.codes(), cb.base, atol=1e-4, rtol=0)
    codec.eval()
    cb.reset_usage()
    out = codec.quantizer(rows.T[None])  # (1, D, N): the seeding latents themselves
    assert cb.utilization() == 1.0  # k-means left no empty cluster on 400 latents for 64 codes
    fitted = (out.quantized[0].T - rows).pow(2).mean()
    nearest_random = torch.cdist(rows, random_codes).min(dim=1).values.pow(2).mean() / 16
    assert fitted < 0.5 * nearest_random


@pytest.mark.parametrize("run", [dict(steps=5), dict(init_from="pretrained/x"), dict(init_from="x", init_skip=["decoder"])],
                         ids=["resumed", "init_from", "init_from-skipping-another-module"])
def test_a_codebook_from_a_checkpoint_is_kept(run):
    torch.manual_seed(0)
    codec = AudioCodec(AudioCodecConfig(**TINY))
    before = {k: v.clone() for k, v in codec.quantizer.state_dict().items()}
    _run(codec, **run)
    for key, value in codec.quantizer.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_skipped_quantizer_is_seeded_even_with_init_from():
    torch.manual_seed(0)
    codec = AudioCodec(AudioCodecConfig(**TINY))
    _run(codec, init_from="pretrained/x", init_skip=["quantizer"])
    assert bool(codec.quantizer.codebook.initialized)


def test_other_quantizers_and_too_little_audio_are_refused():
    with pytest.raises(ValueError, match="initialises an LC quantizer.*GroupedResidualVQ"):
        _run(AudioCodec(AudioCodecConfig(**{**TINY, "quantizer": "grvq", "num_groups": 2})))
    with pytest.raises(ValueError, match="cannot seed 64 codes; raise `seconds`"):
        _run(AudioCodec(AudioCodecConfig(**TINY)), seconds=0.4)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        CodebookFromLatents(seconds=0)
