"""Nested codebooks: lower rates from one image model, selected at encode time and named in the header."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mediatok.codecs.image import ImageCodec
from mediatok.codecs.image.model import ImageVQ, ImageVQConfig
from mediatok.entropy import FrequencyPrior, pack, unpack
from mediatok.errors import BitstreamError
from mediatok.train.image import RandomCrops
from mediatok.train.image.nested import fit_nested_codebooks, with_nested_sizes


@pytest.fixture(scope="module")
def nested_model(photo) -> ImageVQ:
    torch.manual_seed(0)
    base = ImageVQ(ImageVQConfig(widths=(8, 8, 16, 16), blocks=1, codebook_size=64, quantizer_warmup=20,
                                 warmup_sample=2048))
    crops = RandomCrops([photo], 64, epoch_size=8 * 150, seed=1)
    opt = torch.optim.Adam(base.parameters(), lr=3e-3)
    for step in range(150):  # a briefly trained tokenizer: fine-tuning an untrained decoder's inputs means nothing
        x = torch.stack([crops[8 * step + i] for i in range(8)])
        out = base.train()(x)
        loss = (out.reconstruction - x).abs().mean() + out.commit_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = with_nested_sizes(base.eval(), (16, 4))
    model.report = fit_nested_codebooks(model, [photo], steps=40, crop=64, batch_size=4, lr=1e-2)
    return model


def test_nested_tables_start_from_kmeans_and_fine_tuning_lowers_the_loss(nested_model):
    report = nested_model.report
    assert all(r["after"] <= r["before"] for r in report.values()), report  # never worse than k-means
    assert report[16]["kept"] == "fine-tuned" and report[16]["after"] < report[16]["before"], report
    for size in report:
        table = nested_model.nested_codebook(size)
        assert table.shape == (size, 8) and torch.equal(table, table.half().float())  # fp16, as shipped
    with pytest.raises(ValueError, match=r"codebook sizes \[64, 16, 4\], not 32"):
        nested_model.nested_codebook(32)
    with pytest.raises(ValueError, match="nested_sizes must be distinct sizes"):
        ImageVQConfig(codebook_size=64, nested_sizes=(64,))


def test_encoding_with_a_nested_codebook_picks_its_nearest_entries(nested_model, photo):
    x = torch.from_numpy(photo[:64, :64].copy()).permute(2, 0, 1)[None].float() / 255
    tokens = nested_model.encode_latents(x, codebook_size=16)
    assert tokens.shape == (1, 1, 8, 8) and int(tokens.max()) < 16
    z = nested_model.encode(x)[0].permute(1, 2, 0).reshape(-1, 8)
    expected = torch.cdist(z, nested_model.nested_codebook(16)).argmin(1)
    assert torch.equal(tokens.reshape(-1), expected)
    y = nested_model.decode_latents(tokens, codebook_size=16)
    table = nested_model.nested_codebook(16)
    assert torch.allclose(y, nested_model.decode(table[tokens[:, 0]].permute(0, 3, 1, 2)))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        nested_model.decode_latents(tokens, codebook_size=4)


def test_codec_rates_follow_the_selected_codebook_and_survive_save_and_load(nested_model, photo, tmp_path):
    image = photo[:120, :200]
    main_tokens = ImageCodec(nested_model).tokenize(image)
    priors = {s: FrequencyPrior.fit(ImageCodec(nested_model).tokenize(image, codebook_size=s).reshape(1, -1), s)
              for s in (16, 4)}
    codec = ImageCodec(nested_model, FrequencyPrior.fit(main_tokens.reshape(1, -1), 64), name="nested", short_id="nt",
                       nested_priors=priors)
    codec.save(tmp_path / "nested")
    codec = ImageCodec.load(tmp_path / "nested")
    assert sorted(codec.nested_priors) == [4, 16]
    sizes = {}
    for size in (None, 16, 4):
        blob = codec.encode(image, codebook_size=size)
        header, _ = unpack(blob)
        assert header.get("codebook_size") == size  # absent for the main codebook
        back = codec.decode(blob)
        assert back.shape == image.shape
        expected = codec.detokenize(codec.tokenize(image, codebook_size=size), codebook_size=size)[:120, :200]
        assert np.array_equal(back, expected)
        sizes[size] = len(blob)
    assert sizes[4] < sizes[16] < sizes[None]
    with pytest.raises(ValueError, match=r"one of this model's \[64, 16, 4\]"):
        codec.encode(image, codebook_size=8)


def test_hostile_codebook_sizes_in_headers_are_refused(nested_model, photo, tmp_path):
    codec = ImageCodec(nested_model, name="nested", short_id="nt")
    header, chunks = unpack(codec.encode(photo[:64, :64], codebook_size=16))
    for bad in (8, 65, 1 << 40, 0):
        with pytest.raises(BitstreamError, match="codebook"):
            codec.decode(pack({**header, "codebook_size": bad}, chunks))


def test_a_checkpoint_with_a_prior_for_an_unknown_size_is_refused(nested_model, photo, tmp_path):
    from safetensors.torch import load_file, save_file

    codec = ImageCodec(nested_model, name="nested", short_id="nt")
    codec.save(tmp_path / "m")
    tensors = load_file(str(tmp_path / "m" / "model.safetensors"))
    prior = FrequencyPrior.fit(torch.zeros(1, 8, dtype=torch.long), 32)
    tensors.update({f"prior@32.{k}": v for k, v in prior.state_dict().items()})
    save_file(tensors, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(ValueError, match="codebook size '32'"):
        ImageCodec.load(tmp_path / "m")


def test_eval_reports_each_nested_size_beside_webp_at_its_size(nested_model, photo_folder):
    from mediatok.codecs.image.evaluate import evaluate, format_table

    codec = ImageCodec(nested_model, name="nested", short_id="nt")
    rows = evaluate(codec, photo_folder / "val", with_baselines=True)
    by_name = {r["system"]: r for r in rows}
    assert {"nested @16 codes (ours)", "nested @4 codes (ours)", "webp / webp 2x-down at nested @16's size"} <= set(by_name)
    ours, webp = by_name["nested @16 codes (ours)"], by_name["webp / webp 2x-down at nested @16's size"]
    assert ours["images"] == webp["images"] == 2
    assert ours["bpp"] < by_name["nested (ours)"]["bpp"]  # raw indices: log2(16) < log2(64) bits a token
    assert "nested @4 codes (ours)" in format_table(rows)
    # each codebook again on the photo shrunk 2x, beside WebP on the same shrunk photo at that size
    for tag in ("", " @16 codes", " @4 codes"):
        shrunk = by_name[f"nested 2x-down{tag} (ours)"]
        full = by_name[f"nested{tag} (ours)"]
        assert shrunk["images"] == 2 and shrunk["bpp"] < full["bpp"], tag  # a quarter of the tokens, + a header
    assert by_name["webp 2x-down at nested 2x-down @16's size"]["images"] == 2
    assert [r["system"] for r in rows][-2:] == ["nested 2x-down @4 codes (ours)",
                                                "webp 2x-down at nested 2x-down @4's size"]


def test_cli_encodes_with_a_nested_codebook(nested_model, photo_folder, tmp_path, capsys):
    from mediatok.cli import main

    codec = ImageCodec(nested_model, name="nested", short_id="nt")
    codec.save(tmp_path / "nested")
    src = next((photo_folder / "val").glob("*.png"))
    out = tmp_path / "a.mtk"
    assert main(["encode", str(src), "-o", str(out), "--model", str(tmp_path / "nested"), "--codebook-size", "4"]) == 0
    assert unpack(out.read_bytes())[0]["codebook_size"] == 4
    assert main(["decode", str(out), "-o", str(tmp_path / "a.png"), "--model", str(tmp_path / "nested")]) == 0
    assert main(["encode", str(src), "-o", str(out), "--model", str(tmp_path / "nested"), "--codebook-size", "8"]) != 0
    assert "--codebook-size must be one of nested's codebook sizes [64, 16, 4]" in capsys.readouterr().err
    # --downscale combines with --codebook-size; the header keeps both and decode returns the input's size
    assert main(["encode", str(src), "-o", str(out), "--model", str(tmp_path / "nested"), "--codebook-size", "4",
                 "--downscale", "2"]) == 0
    header = unpack(out.read_bytes())[0]
    assert header["codebook_size"] == 4 and header["downscale"] == 2
    assert main(["decode", str(out), "-o", str(tmp_path / "b.png"), "--model", str(tmp_path / "nested")]) == 0
    assert Image.open(tmp_path / "b.png").size == Image.open(src).size
    assert main(["encode", str(src), "-o", str(out), "--model", str(tmp_path / "nested"), "--downscale", "3"]) != 0
    assert "--downscale must be one of [1, 2, 4] for 'nested', got 3" in capsys.readouterr().err


def test_tokenize_dataset_with_a_nested_codebook_and_downscale(nested_model, photo_folder, tmp_path):
    """Options reach every item's tokenize, the manifest's vocabulary is the nested codebook's, the options are part
    of the shards' identity, and a wrong option is refused before any file is read."""
    from mediatok.cli import main
    from mediatok.tokenize import TokenDataset, tokenize_dataset

    codec = ImageCodec(nested_model, name="nested", short_id="nt")
    options = {"codebook_size": 16, "downscale": 2}
    summary = tokenize_dataset(photo_folder / "train", tmp_path / "out", codec, options=options, progress=False)
    assert summary.num_items == 4 and not summary.failures
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model"]["codebook_size"] == 16 and manifest["model"]["options"] == options
    data = TokenDataset(tmp_path / "out", pattern=None)
    assert data.vocab_size == 16
    expected = [codec.tokenize(np.asarray(Image.open(p)), **options)
                for p in sorted((photo_folder / "train").glob("*.png"))]
    for i, tokens in enumerate(expected):
        assert tokens.shape == (1, 10, 15)  # (150, 225) px shrunk to (75, 113), one token per 8 x 8 of those
        assert int(tokens.max()) < 16 and torch.equal(data[i]["tokens"], tokens)
    again = tokenize_dataset(photo_folder / "train", tmp_path / "out", codec, options={"codebook_size": 4},
                             progress=False)
    assert again.shards_skipped == 0  # other options: nothing reused
    plain = tokenize_dataset(photo_folder / "train", tmp_path / "plain", codec, progress=False)
    assert "options" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())["model"]  # as before
    assert plain.num_tokens == 4 * 19 * 29
    for bad, match in (({"codebook_size": 32}, r"one of this model's \[64, 16, 4\]"),
                       ({"downscale": 3}, r"downscale must be one of \[1, 2, 4\]"),
                       ({"rate": 1}, r"no option 'rate'; its options are \['codebook_size', 'downscale'\]"),
                       ({"downscale": [2]}, "must be a plain value")):
        with pytest.raises(ValueError, match=match):
            tokenize_dataset(photo_folder / "train", tmp_path / "bad", codec, options=bad, progress=False)
    assert not (tmp_path / "bad").exists()
    codec.save(tmp_path / "nested")
    assert main(["tokenize", str(photo_folder / "train"), "-o", str(tmp_path / "cli"), "--model",
                 str(tmp_path / "nested"), "--codebook-size", "16", "--downscale", "2", "--no-progress"]) == 0
    from_cli = TokenDataset(tmp_path / "cli", pattern=None)
    assert all(torch.equal(from_cli[i]["tokens"], tokens) for i, tokens in enumerate(expected))
