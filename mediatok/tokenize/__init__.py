"""Dataset -> token shards for speech/image language models, flattening patterns, distributed writer.

    from mediatok.tokenize import tokenize_dataset, TokenDataset
    tokenize_dataset("clips/", "shards/", "speech-16k", workers=2)      # or: mediatok tokenize clips/ -o shards/
    ds = TokenDataset("shards/")                                       # ds[0]["tokens"]: LongTensor, pattern applied
                                                                       # ds[0]["shape"]: the item's (Q, *S)
Any registered media family tokenizes the same way: the codec's modality picks the family's file reader.
"""
from __future__ import annotations

from mediatok.tokenize.media import CodecInfo, check_codec, codec_info, load_codec, media_io
from mediatok.tokenize.patterns import PATTERNS, Pattern, get_pattern
from mediatok.tokenize.pipeline import TokenizeSummary, tokenize_dataset
from mediatok.tokenize.shards import FORMAT, TokenDataset
from mediatok.tokenize.sources import Item, discover, read_manifest

__all__ = [
    "FORMAT", "PATTERNS", "CodecInfo", "Item", "Pattern", "TokenDataset", "TokenizeSummary", "check_codec",
    "codec_info", "discover", "get_pattern", "load_codec", "media_io", "read_manifest", "tokenize_dataset",
]
