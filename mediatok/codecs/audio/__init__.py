"""Audio codecs: the network (`model`), the user-facing codec (`codec`) and evaluation (`evaluate`)."""
from __future__ import annotations

from mediatok.codecs import register_family
from mediatok.codecs.audio.codec import SpeechCodec
from mediatok.codecs.audio.io import load_audio, read_audio
from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig, CodecOutput

register_family("audio", SpeechCodec.load)

__all__ = ["AudioCodec", "AudioCodecConfig", "CodecOutput", "SpeechCodec", "load_audio", "read_audio"]
