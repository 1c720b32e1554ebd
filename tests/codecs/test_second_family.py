"""Issue 10's done-when: a second family (tests/codecs/tiny_image_family.py) goes through every CLI verb."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import mediatok
import tiny_image_family as tif
from mediatok.cli import main


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    """A saved tiny image codec (codebook k-means-initialised on real-looking latents) with a fitted prior."""
    from mediatok.entropy import FrequencyPrior

    tif.register()
    root = tmp_path_factory.mktemp("tiny-image")
    paths = tif.synthetic_images(root / "images", 6)
    torch.manual_seed(0)
    model = tif.TinyImageNet()
    codec = tif.TinyImageCodec(model, name="tiny-image-test", short_id="tit")
    batch = torch.stack([codec.prepare(tif.read_image(p)[0]).x for p in paths])
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    tokens = torch.cat([codec.tokenize(tif.read_image(p)[0]).reshape(1, -1) for p in paths], 1)
    codec.entropy_model = FrequencyPrior.fit(tokens, model.cfg.codebook_size)
    codec.save(root / "model")
    yield root / "model", root / "images"
    tif.unregister()


def test_python_api_round_trip_keeps_size_and_kind(image_model):
    folder, images = image_model
    codec = mediatok.load(folder)
    assert codec.modality == "image" and codec.family == "tiny-image"
    x, _ = tif.read_image(sorted(images.iterdir())[0])
    tokens = codec.tokenize(x)
    assert tokens.shape == (1, 9, 13) and tokens.dtype == torch.int64  # 36 x 52 padded to 36 x 52 / 4
    y = codec.decode(codec.encode(x))
    assert y.shape == x.shape and y.dtype == np.uint8
    np.testing.assert_array_equal(y, codec.detokenize(tokens)[: x.shape[0], : x.shape[1]])
    with pytest.raises(ValueError, match=r"shape \(1, h, w\)"):
        codec.detokenize(torch.zeros(2, 3, 3, dtype=torch.long))


def test_cli_encode_info_decode_eval(image_model, tmp_path, capsys):
    folder, images = image_model
    src = sorted(images.iterdir())[1]
    assert main(["encode", str(src), "-o", str(tmp_path / "a.mtk"), "--model", str(folder)]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "a.mtk")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"height +: 36\n", out) and re.search(r"width +: 52\n", out)
    # decode: the header's id "tit" is neither registered nor shipped, so the model must be named...
    assert main(["decode", str(tmp_path / "a.mtk"), "-o", str(tmp_path / "b.png")]) == 2
    assert "neither registered nor shipped" in capsys.readouterr().err
    assert main(["decode", str(tmp_path / "a.mtk"), "-o", str(tmp_path / "b.png"), "--model", str(folder)]) == 0
    y, _ = tif.read_image(tmp_path / "b.png")
    assert y.shape == (36, 52, 3)
    # ...and the output suffix must be one the family writes
    assert main(["decode", str(tmp_path / "a.mtk"), "-o", str(tmp_path / "b.wav"), "--model", str(folder)]) == 2
    assert "write .png" in capsys.readouterr().err
    rows_path = tmp_path / "rows.json"
    assert main(["eval", "--model", str(folder), str(images), "--json", str(rows_path)]) == 0
    assert "| tiny-image-test (ours) |" in capsys.readouterr().out
    rows = json.loads(rows_path.read_text())
    assert [r["system"] for r in rows] == ["tiny-image-test (ours)", "jpeg-q10"]
    codec = mediatok.load(folder)
    xs = [tif.read_image(p)[0] for p in sorted(images.iterdir())]
    blobs = [codec.encode(x) for x in xs]
    assert rows[0]["bpp"] == pytest.approx(8 * sum(map(len, blobs)) / sum(x.shape[0] * x.shape[1] for x in xs))
    assert rows[0]["psnr"] == pytest.approx(np.mean([tif.psnr(x, codec.decode(b)) for x, b in zip(xs, blobs)]))
    assert rows[1]["psnr"] > 20  # JPEG at quality 10 on smooth synthetic pictures


def test_cli_tokenize_writes_grids(image_model, tmp_path):
    from mediatok.tokenize import TokenDataset

    folder, images = image_model
    assert main(["tokenize", str(images), "-o", str(tmp_path / "shards"), "--model", str(folder),
                 "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest["num_items"] == 6 and manifest["model"]["modality"] == "image"
    ds = TokenDataset(tmp_path / "shards")
    item = ds[0]
    tokens = item["tokens"] if isinstance(item, dict) else item.tokens
    codec = mediatok.load(folder)
    expected = codec.tokenize(tif.read_image(sorted(images.iterdir())[0])[0])
    assert tuple(item["shape"] if isinstance(item, dict) else item.shape) == tuple(expected.shape)
    assert torch.equal(torch.as_tensor(np.asarray(tokens)).reshape(expected.shape).long(), expected)


TRAIN_YAML = """
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_steps: 6
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  val_check_interval: 3
  limit_val_batches: 1
  default_root_dir: {root}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{dirpath: {root}/checkpoints, save_last: true, save_top_k: 0, every_n_train_steps: 6}}
model:
  codec:
    class_path: tiny_image_family.TinyImageNet
    init_args:
      cfg: {{hidden: 8, latent_dim: 4, codebook_size: 16}}
  losses:
    class_path: tiny_image_family.TinyImageLosses
  discriminator:
    class_path: tiny_image_family.PatchDiscriminator
  lr: 0.01
  warmup_steps: 1
  disc_start: 2
data:
  class_path: tiny_image_family.TinyImageData
  init_args: {{root: {images}, crop: 16, batch_size: 2}}
"""


def test_cli_train_fit_from_yaml_then_export_and_encode(image_model, tmp_path):
    from mediatok.train.export import export

    _, images = image_model
    config = tmp_path / "tiny.yaml"
    config.write_text(TRAIN_YAML.format(root=tmp_path / "run", images=images))
    assert main(["train", "fit", "--config", str(config)]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    codec = export(ckpt, tmp_path / "exported", "tiny-trained", "tt2")
    assert isinstance(codec, tif.TinyImageCodec) and codec.codebook_size == 16
    x, _ = tif.read_image(sorted(images.iterdir())[0])
    assert codec.decode(codec.encode(x)).shape == x.shape  # raw indices: no prior was fitted
