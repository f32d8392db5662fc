"""Content documents in the emulator: URL identity, keyword classification and validation of corpus bodies.

Pure functions, no state. A document is identified by its *hashed URL*: the URL is normalised (scheme, query and
fragment dropped, host lower-cased, trailing ``/`` removed) and hashed to an unsigned 64-bit number written in
decimal, so a profile's ``hashedurls`` and a document's ``id`` agree whatever form of the URL each one saw.

Classification is deterministic and keyword based: each topic of :data:`TAXONOMY` owns a set of words; a
document's relevance to a topic is ``min(1, hits / SATURATION)`` where ``hits`` counts the topic's words in the
document's title, description, text and URL path. Topics a document names itself (``topics``) get relevance 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from hashlib import blake2b
from typing import Any
from urllib.parse import urlsplit

#: Topic -> the words that count for it. Lower-case, one token each (see :data:`_TOKEN`).
TAXONOMY: dict[str, frozenset[str]] = {
    "running": frozenset({"run", "runs", "running", "runner", "runners", "marathon", "jog", "jogging", "sprint",
                          "5k", "10k", "pace", "sneaker", "sneakers", "trail"}),
    "cycling": frozenset({"bike", "bikes", "biking", "cycling", "cyclist", "cyclists", "bicycle", "pedal",
                          "saddle", "peloton", "gravel"}),
    "nutrition": frozenset({"nutrition", "diet", "protein", "recipe", "recipes", "meal", "meals", "vitamin",
                            "vitamins", "calories", "hydration", "snack", "snacks"}),
    "outdoors": frozenset({"hiking", "hike", "camping", "camp", "outdoor", "outdoors", "mountain", "mountains",
                           "tent", "backpack", "climbing"}),
    "travel": frozenset({"travel", "trip", "trips", "flight", "flights", "hotel", "hotels", "destination",
                         "vacation", "beach", "itinerary"}),
    "finance": frozenset({"finance", "budget", "budgeting", "saving", "savings", "invest", "investing", "loan",
                          "mortgage", "credit", "retirement"}),
    "technology": frozenset({"software", "app", "apps", "cloud", "gadget", "gadgets", "smartphone", "laptop",
                             "technology", "wearable", "wearables", "gps"}),
    "fashion": frozenset({"fashion", "style", "dress", "jacket", "jackets", "outfit", "outfits", "apparel",
                          "collection"}),
}  # fmt: skip
#: Hits at which a topic's relevance reaches 1.0.
SATURATION = 3
MAX_URL_CHARS = 2048
MAX_TEXT_CHARS = 256 * 1024
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_TOPICS = 50
#: Attributes the corpus API understands; anything else is kept as a custom attribute.
KNOWN_FIELDS = ("id", "url", "title", "description", "text", "topics", "author", "primary_image", "sitename",
                "stream", "language", "aspects", "created", "meta")  # fmt: skip
_TOKEN = re.compile(r"[a-z0-9]+")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: ``scheme:`` without ``//`` (``mailto:x``); a host with a port (``example.com:8080``) is not one.
_BARE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)")


class ContentError(ValueError):
    """A document or a content request the emulator refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def normalise_url(raw: Any) -> str:
    """``https://WWW.Example.com/a/b/?x=1#y`` -> ``www.example.com/a/b``; raises :class:`ContentError`."""
    if not isinstance(raw, str) or not raw.strip():
        raise ContentError('"url" must be a non-empty string such as "https://example.com/blog/post"')
    text = raw.strip()
    if len(text) > MAX_URL_CHARS:
        raise ContentError(f'"url" is {len(text)} characters; the limit is {MAX_URL_CHARS}')
    if any(c.isspace() for c in text):
        raise ContentError(f'"url" {text[:80]!r} contains whitespace; percent-encode it')
    bare = _BARE_SCHEME.match(text) if "://" not in text else None  # mailto:, javascript: ...
    parts = urlsplit(text if "://" in text else f"//{text}")
    scheme = bare.group(1) if bare else parts.scheme
    if scheme and scheme.lower() not in ("http", "https"):
        raise ContentError(f'"url" {text[:80]!r} has scheme {scheme!r}; use http or https')
    host = (parts.hostname or "").lower()
    if not host or "." not in host.strip("."):
        raise ContentError(f'"url" {text[:80]!r} has no host name (e.g. example.com/path)')
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    return f"{host}{port}{parts.path}".rstrip("/")


def hashed_url(url: str) -> str:
    """The document id of a URL (normalised first): an unsigned 64-bit hash in decimal."""
    digest = blake2b(normalise_url(url).encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big"))


def try_hashed_url(url: Any) -> str | None:
    """:func:`hashed_url`, or ``None`` for a value that is not a usable URL (events carry all sorts)."""
    try:
        return hashed_url(url)
    except (ContentError, ValueError):
        return None


def classify(*texts: str, explicit: list[str] | None = None) -> dict[str, float]:
    """``{topic: relevance}`` (0..1, three decimals), highest first then by name."""
    hits: dict[str, int] = {}
    for text in texts:
        for token in _TOKEN.findall(text.lower()):
            for topic, words in TAXONOMY.items():
                if token in words:
                    hits[topic] = hits.get(topic, 0) + 1
    relevances = {t: round(min(1.0, n / SATURATION), 3) for t, n in hits.items()}
    for topic in explicit or []:
        relevances[topic] = 1.0
    return dict(sorted(relevances.items(), key=lambda kv: (-kv[1], kv[0])))


def _topics_of(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ContentError('"topics" must be a list of strings (or one comma-separated string)')
    topics = list(dict.fromkeys(t.strip().lower() for t in items if t.strip()))
    if len(topics) > MAX_TOPICS:
        raise ContentError(f'"topics" has {len(topics)} entries; the limit is {MAX_TOPICS}')
    return topics


def check_body(body: Any) -> dict[str, Any]:
    """A ``POST /api/content/corpus`` body, checked: one JSON object with ``url`` (or ``id``) and flat values."""
    if isinstance(body, list):
        raise ContentError("the corpus API takes one document per request: send a JSON object, not an array")
    if not isinstance(body, Mapping):
        raise ContentError('send a JSON object such as {"url": "https://example.com/post", "title": "..."}')
    if not body.get("url") and not body.get("id"):
        raise ContentError('a document needs "url" (or the "id" of a document already in the corpus)')
    out: dict[str, Any] = {}
    for name, value in body.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ContentError(f"attribute name {name!r} is invalid: use a letter, then letters, digits or '_'")
        if value is None or value == "":
            continue
        if isinstance(value, Mapping) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)):
            raise ContentError(f'attribute "{name}" must be a string, number, boolean or list of them')
        out[name] = value
    for name in ("title", "description", "text", "author", "id"):
        value = out.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise ContentError(f'"{name}" must be a string')
    if len(str(out.get("text", ""))) > MAX_TEXT_CHARS:
        raise ContentError(f'"text" is longer than {MAX_TEXT_CHARS} characters; send a summary or an excerpt')
    if len(json.dumps(out, default=str)) > MAX_DOCUMENT_BYTES:
        raise ContentError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    if "url" in out:
        out["url"] = normalise_url(out["url"])
    out["topics"] = _topics_of(out.get("topics"))
    return out
