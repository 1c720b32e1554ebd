"""Vector quantizers over one codebook core. Every quantizer maps z (B, D, *S) to a QuantizerOutput.

    out = vq(z)                          # quantized (B, D, *S), indices (B, Q, *S), loss, stats
    vq.decode_indices(out.indices)       # == out.quantized in eval mode
"""
from mediatok.quantizers.base import QuantizerOutput
from mediatok.quantizers.codebook import Codebook, CodebookResult
from mediatok.quantizers.fsq import FSQ
from mediatok.quantizers.implicit import LCQuantizer, ProjectedCodebook, SimVQ
from mediatok.quantizers.kmeans import kmeans
from mediatok.quantizers.rebalance import RebalanceResult, rebalance_codebook
from mediatok.quantizers.residual import GroupedResidualVQ, ResidualVQ
from mediatok.quantizers.vq import SingleCodebookQuantizer, VectorQuantizer

__all__ = [
    "Codebook",
    "CodebookResult",
    "FSQ",
    "GroupedResidualVQ",
    "LCQuantizer",
    "ProjectedCodebook",
    "QuantizerOutput",
    "RebalanceResult",
    "ResidualVQ",
    "SimVQ",
    "SingleCodebookQuantizer",
    "VectorQuantizer",
    "kmeans",
    "rebalance_codebook",
]
