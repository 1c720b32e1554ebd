"""The shared quantizer contract: shapes, exact index round trips, losses, gradients — for every quantizer."""
from __future__ import annotations

import pytest
import torch

from mediatok.quantizers import FSQ, GroupedResidualVQ, LCQuantizer, ResidualVQ, SimVQ, VectorQuantizer

DIM = 16

FACTORIES = {
    "vq-ema": lambda: VectorQuantizer(DIM, 64),
    "vq-grad-cosine": lambda: VectorQuantizer(DIM, 64, ema_decay=None, metric="cosine"),
    "vq-lowdim": lambda: VectorQuantizer(DIM, 64, codebook_dim=4),
    "vq-rotation": lambda: VectorQuantizer(DIM, 64, gradient="rotation"),
    "rvq": lambda: ResidualVQ(DIM, 32, num_quantizers=3),
    "rvq-lowdim-grad": lambda: ResidualVQ(DIM, 32, num_quantizers=2, codebook_dim=8, ema_decay=None),
    "grvq": lambda: GroupedResidualVQ(DIM, 32, num_groups=2, num_quantizers=2),
    "simvq": lambda: SimVQ(DIM, 128),
    "lc": lambda: LCQuantizer(DIM, 256, codebook_dim=24),
    "fsq": lambda: FSQ([8, 5, 5, 4], dim=DIM),
    "fsq-nodim": lambda: FSQ([7, 5, 5, 5, 5]),
}

SHAPES = [(2, None, 50), (2, None, 6, 7), (1, None, 3, 4, 5)]


def _input(quantizer, shape) -> torch.Tensor:
    shape = (shape[0], quantizer.dim, *shape[2:])
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape", SHAPES, ids=["1d", "2d", "3d"])
def test_indices_reproduce_output_exactly_in_eval(name, shape):
    torch.manual_seed(0)
    q = FACTORIES[name]()
    x = _input(q, shape)
    q.train()
    for _ in range(3):
        q(x)
    q.eval()
    out = q(x)
    assert out.quantized.shape == x.shape
    assert out.indices.shape == (x.shape[0], q.num_codebooks, *x.shape[2:])
    assert out.indices.dtype == torch.int64
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < q.codebook_size
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert torch.equal(q.decode_indices(out.indices), out.quantized)


@pytest.mark.parametrize("name", FACTORIES)
def test_quantization_is_a_projection_onto_the_codebook(name):
    """Quantizing a decoded output again gives the same indices (search is exact and deterministic)."""
    torch.manual_seed(0)
    q = FACTORIES[name]()
    x = _input(q, SHAPES[0])
    q.train()
    q(x)
    q.eval()
    out = q(x)
    again = q(x)
    assert torch.equal(out.indices, again.indices)
    if name.startswith("vq") and "lowdim" not in name and "cosine" not in name:
        assert torch.equal(q(out.quantized).indices, out.indices)


@pytest.mark.parametrize("name", FACTORIES)
def test_gradients_reach_the_encoder(name):
    torch.manual_seed(0)
    q = FACTORIES[name]()
    encoder = torch.nn.Conv1d(8, q.dim, 1)
    q.train()
    z = encoder(torch.randn(2, 8, 40))
    out = q(z)
    (out.quantized.pow(2).mean() + out.loss).backward()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [SimVQ, LCQuantizer])
def test_implicit_codebook_trains_only_its_linear_map(cls):
    q = cls(DIM, 64) if cls is SimVQ else cls(DIM, 64, codebook_dim=12)
    q.train()
    out = q(torch.randn(2, DIM, 30))
    out.loss.backward()
    assert q.codebook.projector.weight.grad.abs().sum() > 0
    assert not q.codebook.base.requires_grad


def test_rotation_trick_forward_value_is_the_codeword():
    torch.manual_seed(0)
    q = VectorQuantizer(DIM, 32, gradient="rotation")
    x = torch.randn(3, DIM, 20)
    q.train()
    q(x)
    out_train = q(x)
    q.eval()
    out_eval = q(x)
    assert torch.allclose(out_train.quantized, out_eval.quantized, atol=1e-5)


def test_residual_levels_reduce_error_and_decode_at_fewer_levels():
    torch.manual_seed(0)
    rvq = ResidualVQ(DIM, 64, num_quantizers=4)
    x = torch.randn(4, DIM, 64)
    rvq.train()
    for _ in range(10):
        rvq(x)
    rvq.eval()
    errors = []
    for n in range(1, 5):
        out = rvq(x, num_quantizers=n)
        assert out.indices.shape[1] == n
        assert torch.equal(rvq.decode_indices(out.indices), out.quantized)
        errors.append(float((out.quantized - x).pow(2).mean()))
    assert errors == sorted(errors, reverse=True), errors
    full = rvq(x)
    assert torch.equal(rvq.decode_indices(full.indices[:, :2]), rvq(x, num_quantizers=2).quantized)


def test_quantizer_dropout_trains_at_varying_depths():
    torch.manual_seed(0)
    rvq = ResidualVQ(DIM, 16, num_quantizers=4, quantizer_dropout=1.0)
    rvq.train()
    depths = {rvq(torch.randn(2, DIM, 10)).indices.shape[1] for _ in range(40)}
    assert depths == {1, 2, 3, 4}
    grvq = GroupedResidualVQ(DIM, 16, num_groups=2, num_quantizers=3, quantizer_dropout=1.0)
    grvq.train()
    assert {grvq(torch.randn(2, DIM, 10)).indices.shape[1] for _ in range(30)} <= {2, 4, 6}


def test_bits_per_token():
    assert VectorQuantizer(8, 1024).bits_per_token == 10
    assert ResidualVQ(8, 1024, num_quantizers=4).bits_per_token == 40
    # HiFi-Codec at 16 kHz: 2 groups x 2 levels x 1024 codes at 50 frames/s = 2 kbps.
    grvq = GroupedResidualVQ(8, 1024, num_groups=2, num_quantizers=2)
    assert grvq.bits_per_token * 50 == 2000
    assert SimVQ(8, 65536).bits_per_token == 16
    assert FSQ([8, 5, 5, 5]).bits_per_token == pytest.approx(torch.log2(torch.tensor(1000.0)).item())
    assert FSQ([8, 5, 5, 5]).codebook_size == 1000


def test_fsq_uses_every_level_and_all_codes_are_distinct():
    fsq = FSQ([4, 3, 2]).eval()
    out = fsq(torch.linspace(-6, 6, 24 * 3).reshape(1, 3, 24).repeat(8, 1, 1) * torch.randn(8, 3, 1).sign())
    codes = fsq.decode_indices(torch.arange(24).reshape(1, 1, 24))
    assert codes.unique(dim=2).shape[2] == 24
    assert out.indices.max() < 24


def test_kmeans_init_finds_the_clusters():
    torch.manual_seed(0)
    centers = torch.randn(16, DIM) * 10
    data = centers[torch.randint(16, (4096,))] + 0.01 * torch.randn(4096, DIM)
    vq = VectorQuantizer(DIM, 16, dead_code_threshold=0.0)
    vq.train()
    out = vq(data.T[None])
    assert float((out.quantized - data.T[None]).pow(2).mean()) < 0.01
    assert out.stats["utilization"] == 1.0


def test_usage_counts_accumulate_until_reset():
    vq = VectorQuantizer(DIM, 8).eval()
    vq.codebook.initialized.fill_(True)
    vq(torch.randn(1, DIM, 100))
    assert vq.codebook.usage_counts.sum() == 100
    vq.codebook.reset_usage()
    assert vq.codebook.utilization() == 0.0
