"""Seedance video requests on Volcengine Ark: the models, request rules, tokens and prices, and
``seedance`` revisions (pure).

Facts cite ``shared/reference/seedance-ark.md`` (§). What Ark's HTTP API looks like (request
bodies, status names, error codes) is not here but in :mod:`wfrun.engines.seedance.wire`.
"""

from wfrun.domain.seedance.models import CATEGORIES, FPS, MODELS, PIXELS, RATIOS, ModelInfo
from wfrun.domain.seedance.pricing import (
    ModelPrice,
    PriceBook,
    output_tokens,
    quote_cost,
    quote_tokens,
)
from wfrun.domain.seedance.request import (
    VideoRequest,
    parse_video_request,
    strip_parameter_suffixes,
)
from wfrun.domain.seedance.revision import (
    FIELDS,
    NODE_CLASS,
    bind_request,
    payload_problems,
    request_node,
)

__all__ = [
    "CATEGORIES",
    "FIELDS",
    "FPS",
    "MODELS",
    "NODE_CLASS",
    "PIXELS",
    "RATIOS",
    "ModelInfo",
    "ModelPrice",
    "PriceBook",
    "VideoRequest",
    "bind_request",
    "output_tokens",
    "parse_video_request",
    "payload_problems",
    "quote_cost",
    "quote_tokens",
    "request_node",
    "strip_parameter_suffixes",
]
