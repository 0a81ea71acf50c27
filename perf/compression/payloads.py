"""A realistic product-list JSON body of a chosen size, reproducible from a seed.

Real API payloads compress less than ``{"items": [0, 1, 2, ...]}``: they mix repeated
keys (very compressible) with ids, SKUs, prices, timestamps and free text (much less).
This generator produces that mix so measured ratios resemble a product API's.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson

_ADJECTIVES = ("compact", "durable", "lightweight", "premium", "classic", "wireless", "ergonomic",
               "organic", "vintage", "smart", "foldable", "waterproof", "handmade", "modular")
_NOUNS = ("backpack", "kettle", "headphones", "desk lamp", "notebook", "water bottle", "keyboard",
          "jacket", "chair", "blender", "sneakers", "tent", "watch", "speaker", "mug", "drill")
_CATEGORIES = ("outdoor", "kitchen", "audio", "office", "apparel", "home", "tools", "sports")
_WORDS = ("designed", "for", "everyday", "use", "with", "a", "recycled", "shell", "and", "soft",
          "lining", "fits", "most", "bags", "easy", "to", "clean", "ships", "in", "plastic-free",
          "packaging", "two-year", "warranty", "tested", "by", "our", "team", "battery", "lasts",
          "up", "hours", "quiet", "motor", "stainless", "steel", "adjustable", "strap")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _product(rng: random.Random, product_id: int) -> dict[str, object]:
    name = f"{rng.choice(_ADJECTIVES).title()} {rng.choice(_NOUNS)}"
    return {
        "id": product_id,
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "sku": f"{rng.choice(_CATEGORIES)[:3].upper()}-{rng.randrange(10**6):06d}",
        "name": name,
        "description": " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(8, 30))).capitalize() + ".",
        "category": rng.choice(_CATEGORIES),
        "price": {"amount": round(rng.uniform(2, 500), 2), "currency": "EUR"},
        "stock": rng.randrange(0, 500),
        "rating": round(rng.uniform(1, 5), 1),
        "reviews": rng.randrange(0, 5000),
        "tags": rng.sample(_ADJECTIVES, rng.randrange(1, 4)),
        "created_at": (_EPOCH + timedelta(seconds=rng.randrange(60 * 86400))).isoformat(),
        "image_url": f"https://cdn.example.com/img/{product_id}/{rng.getrandbits(32):08x}.jpg",
    }


def product_list(count: int, *, seed: int = 0) -> dict[str, object]:
    """A product-list page as a dict: ``{"items": [...count products], "total": ..., ...}``."""
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count={count!r} must be an int >= 0")
    rng = random.Random(seed)
    items = [_product(rng, i + 1) for i in range(count)]
    return {"items": items, "total": count, "page": 1, "page_size": count}


def product_list_json(size_bytes: int, *, seed: int = 0) -> bytes:
    """A product-list JSON body of about ``size_bytes`` bytes (the first page size reaching it).

    Same ``size_bytes`` and ``seed``, same bytes. At least one product is always included.
    """
    if not isinstance(size_bytes, int) or size_bytes < 1:
        raise ValueError(f"size_bytes={size_bytes!r} must be an int >= 1 (e.g. 100_000 for 100 KB)")
    per_item = len(orjson.dumps(product_list(20, seed=seed))) / 20
    count = max(1, int(size_bytes / per_item))
    body = orjson.dumps(product_list(count, seed=seed))
    while len(body) < size_bytes:
        count += max(1, int((size_bytes - len(body)) / per_item))
        body = orjson.dumps(product_list(count, seed=seed))
    return body
