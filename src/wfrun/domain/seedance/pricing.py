"""What a Seedance video costs: output tokens (seedance-ark.md §2.1) and per-model token
prices (§2.2), in CNY minor units."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from wfrun.domain.money import round_div
from wfrun.domain.seedance.models import FPS, PIXELS
from wfrun.domain.seedance.request import VideoRequest
from wfrun.errors import InvalidWorkflowInput


@dataclass(frozen=True)
class ModelPrice:
    """CNY minor units (1e-8) per million output tokens (§2.2)."""

    per_million: int
    per_million_with_video: int


@dataclass(frozen=True)
class PriceBook:
    """Per-model prices; ``by_resolution`` overrides the model's default for one resolution."""

    models: Mapping[str, ModelPrice]
    by_resolution: Mapping[tuple[str, str], ModelPrice]

    def price(self, model: str, resolution: str) -> ModelPrice:
        found = self.by_resolution.get((model, resolution)) or self.models.get(model)
        if found is None:
            raise InvalidWorkflowInput(f"input model {model!r} has no price on this server")
        return found

    def overridden(self, token_prices: Mapping[str, tuple[int, int]]) -> PriceBook:
        """This book with a revision's own prices (``model`` or ``model@resolution``) on top."""
        if not token_prices:
            return self
        models, by_resolution = dict(self.models), dict(self.by_resolution)
        for name, (plain, with_video) in token_prices.items():
            model, _, resolution = name.partition("@")
            price = ModelPrice(plain, with_video)
            if resolution:
                by_resolution[(model, resolution)] = price
            else:
                models[model] = price
                by_resolution = {k: v for k, v in by_resolution.items() if k[0] != model}
        return PriceBook(models, by_resolution)

    def cost(self, model: str, resolution: str, tokens: int, *, with_video: bool) -> int:
        """What ``tokens`` output tokens cost (rounded half up once)."""
        price = self.price(model, resolution)
        rate = price.per_million_with_video if with_video else price.per_million
        return round_div(tokens * rate, 1_000_000)


def output_tokens(width: int, height: int, duration: int) -> int:
    """§2.1: tokens = W × H × frames / 1024 with frames = 24 × duration + 1 (the example:
    1280×720, 5 s → 108 900)."""
    return math.ceil(width * height * (FPS * duration + 1) / 1024)


def quote_tokens(request: VideoRequest) -> int:
    """The most tokens the request can be billed for: ``adaptive`` takes the largest frame of
    the resolution; the actual figure comes from Ark's usage at settlement."""
    sizes = PIXELS[request.resolution]
    if request.ratio in sizes:
        width, height = sizes[request.ratio]
        return output_tokens(width, height, request.duration)
    return max(output_tokens(w, h, request.duration) for w, h in sizes.values())


def quote_cost(book: PriceBook, request: VideoRequest) -> int:
    return book.cost(
        request.model,
        request.resolution,
        quote_tokens(request),
        with_video=request.with_video_input,
    )
