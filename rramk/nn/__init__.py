"""The learning layer's building blocks: binary layers, the STE, the binary products and batch norm.

``rramk.nn.BinaryLinear`` / ``BinaryConv2d`` (``layers``), the sign STE (``binarize``), the products
of +-1 operands and their one dispatcher (``binary_products``, reference ``xnor``), batch norm over
the global batch of a data-parallel run (``batch_norm``).
"""

from .batch_norm import GlobalBatchNorm, GlobalBatchNormLayer, use_global_batch_norm
from .layers import BinaryConv2d, BinaryLinear, binary_parameters, clip_latent_weights_, is_binary, mark_binary

__all__ = ["BinaryConv2d", "BinaryLinear", "GlobalBatchNorm", "GlobalBatchNormLayer", "binary_parameters",
           "clip_latent_weights_", "is_binary", "mark_binary", "use_global_batch_norm"]
