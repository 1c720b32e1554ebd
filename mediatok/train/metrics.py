"""Quality metrics used in validation; they live in `mediatok.codecs.audio.metrics` (re-exported here)."""
from __future__ import annotations

from mediatok.codecs.audio.metrics import have_quality_metrics, mel_distance, pesq_scores, quality, stoi_score

__all__ = ["have_quality_metrics", "mel_distance", "pesq_scores", "quality", "stoi_score"]
