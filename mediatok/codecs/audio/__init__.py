"""Audio codecs: the network (`model`), the user-facing codec (`codec`), files (`io`) and evaluation (`evaluate`)."""
from __future__ import annotations

from mediatok.codecs import MediaIO, register_family
from mediatok.codecs.audio.codec import SpeechCodec
from mediatok.codecs.audio.evaluate import evaluate, format_table
from mediatok.codecs.audio.io import AUDIO_SUFFIXES, WRITE_SUFFIXES, duration, load_audio, read_audio, read_for_codec, write_audio
from mediatok.codecs.audio.model import AudioCodec, AudioCodecConfig, CodecOutput

AUDIO_IO = MediaIO(AUDIO_SUFFIXES, WRITE_SUFFIXES, read_for_codec, write_audio, duration)
register_family("audio", SpeechCodec, modality="audio", io=AUDIO_IO, evaluate=evaluate, format_table=format_table,
                default_model="speech-16k")

__all__ = ["AUDIO_IO", "AudioCodec", "AudioCodecConfig", "CodecOutput", "SpeechCodec", "load_audio", "read_audio",
           "write_audio"]
