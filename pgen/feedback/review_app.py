r"""The web app of `python -m pgen review`: reviewers rate a generator's samples, keep or
reject, one at a time or a page of tiles at a time, into a reviews.ReviewStore.

    store = reviews.ReviewStore.open("runs/fmnist/reviews.sqlite", generator)
    app = create_app(generator, store, token=access.new_token(), condition_label=None,
                     default_reviewer="anna")
    uvicorn.run(app, host="127.0.0.1", port=8800)

    GET  /?token=T                         sets the token's cookie, then redirects to /
    GET  /                                 the page (review_page.html)
    GET  /samples/{seed}.png?label=L       a sample, rendered on request (never stored)
    GET  /api/state?reviewer=R             the generator, the condition, the counts
    GET  /api/next?reviewer=R&count=N      R's next N unrated samples
    POST /api/ratings  {"generator", "seed", "label", "accepted", "reviewer", "reason"?}
    POST /api/undo     {"reviewer"}        deletes R's latest rating (404: none)
    GET  /ratings.csv                      every rating

Every request needs the server's token and a Host it answers to; writes are same-origin
JSON (see access.py). A sample is a (seed, label) pair. A reviewer's next sample is the
smallest seed they have not rated, with the condition's label, else (conditional generators)
label seed % classes, else label 0: reviewers see the same samples in the same order, so
their ratings overlap.
A malformed request gets a 4xx with {"error": message} and changes nothing: a body over
MAX_BODY_BYTES is refused before it is read (413), numbers are checked as text before they
are converted (422), and when MAX_RENDERS_IN_FLIGHT samples are being rendered a request for
another one is asked to retry (503 with Retry-After) instead of holding a server thread.
"""

import functools
import io
import json
import os
import threading
import unicodedata
from collections.abc import Sequence

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pgen.core import pixels
from pgen.errors import ArgumentError
from pgen.feedback import access
from pgen.feedback.reviews import Rating, ReviewStore
from pgen.generation import generate, generators

PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "review_page.html")
MAX_SEED = generators.MAX_SEED
MAX_SAMPLES_PER_REQUEST = 100
MAX_REVIEWER_CHARS = 64
MAX_REASON_CHARS = 2000
MAX_BODY_BYTES = 16 * 1024  # A rating with the longest reason, in any script, fits.
MAX_RENDERS_IN_FLIGHT = 24  # A grid page and its preloads; the server's other threads stay free.
# Characters a reviewer name may not hold: controls, format characters (bidi overrides,
# zero-width joiners: names that look alike), surrogates, private use and unassigned ones.
_NAME_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
DISPLAY_WIDTH_PX = 256  # Samples are enlarged (nearest) to about this width.
PNG_CACHE_SIZE = 1024  # Recent samples' PNGs kept in memory: a grid page reloads cheaply.
_JSON_TYPES = {int: "integer", bool: "boolean", str: "string"}


def parse_condition(spec: str, generator) -> int:
  """The label of `--condition label=NAME_OR_INDEX` (labels combining attributes: every
  attribute, label=dress,colour=red) for `generator` (a TrainedGenerator or
  reviews.GeneratorRecord)."""
  if not generator.conditional:
    raise ArgumentError(f"condition={spec} needs a class-conditional generator; "
                        f"{generator.source} has no classes.", argument="condition")
  return generate.condition_label(spec, generator.class_names)


class SampleImages:
  """PNGs of samples, enlarged for the page. One render at a time: concurrent requests
  would only compete for the same cores (and compile the same program twice); at most
  MAX_RENDERS_IN_FLIGHT wait for it, the others are told to retry (503)."""

  def __init__(self, generator: generators.TrainedGenerator):
    self._generator = generator
    self._lock = threading.Lock()
    self._in_flight = threading.BoundedSemaphore(MAX_RENDERS_IN_FLIGHT)
    self._scale = max(1, DISPLAY_WIDTH_PX // generator.image_shape[1])
    self.png = functools.lru_cache(maxsize=PNG_CACHE_SIZE)(self._render_png)

  def _render_png(self, seed: int, label: int) -> bytes:
    labels = np.array([label], np.int32) if self._generator.conditional else None
    if not self._in_flight.acquire(blocking=False):
      raise HTTPException(503, f"{MAX_RENDERS_IN_FLIGHT} samples are being rendered; retry.",
                          headers={"Retry-After": "1"})
    try:
      with self._lock:
        image = self._generator.render(
            generators.latents_for_seeds(self._generator, [seed]), labels)
    finally:
      self._in_flight.release()
    picture = pixels.to_pil(np.asarray(image)[0])
    picture = picture.resize((picture.width * self._scale, picture.height * self._scale),
                             Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _rating_json(rating: Rating, store: ReviewStore) -> dict:
  return {"id": rating.id, "seed": rating.seed, "label": rating.label,
          "class": store.generator.class_name(rating.label), "accepted": rating.accepted,
          "reason": rating.reason, "reviewer": rating.reviewer, "created": rating.created}


def _checked_int(name: str, text: str | None, low: int, high: int) -> int:
  """`text` as an integer in low .. high, checked as text first (a number of thousands of
  digits is refused before Python converts it); 422 otherwise."""
  if (text is None or not (text.isascii() and text.isdigit()) or len(text) > len(str(high))
      or not low <= int(text) <= high):
    shown = text if text is None or len(text) <= 24 else text[:24] + "..."
    raise HTTPException(422, f"{name}={shown} must be an integer in {low} .. {high}.")
  return int(text)


def _query_int(request: Request, name: str, default: int | None, low: int, high: int) -> int:
  text = request.query_params.get(name)
  if text is None and default is not None:
    return default
  return _checked_int(name, text, low, high)


def _reviewer(value, status: int) -> str:
  """A reviewer's name, NFC-normalized: 1 .. MAX_REVIEWER_CHARS characters, none of them
  a control, format, surrogate, private or unassigned character."""
  name = unicodedata.normalize("NFC", value.strip()) if (
      isinstance(value, str) and not _has_surrogates(value)) else None
  if (not name or len(name) > MAX_REVIEWER_CHARS
      or any(unicodedata.category(c) in _NAME_REFUSED_CATEGORIES for c in name)):
    shown = value if not isinstance(value, str) else value[:MAX_REVIEWER_CHARS + 1]
    raise HTTPException(status, f"reviewer={shown!r} must be a name of 1 .. "
                        f"{MAX_REVIEWER_CHARS} printable characters.")
  return name


def _has_surrogates(text: str) -> bool:
  """Whether `text` holds a lone surrogate (valid JSON, but not text: SQLite refuses it)."""
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:
    return True
  return False


async def _body(request: Request) -> bytes:
  """The request body, refused (413) beyond MAX_BODY_BYTES before more of it is read."""
  declared = request.headers.get("content-length", "")
  if declared.isascii() and declared.isdigit() and (
      len(declared) > 12 or int(declared) > MAX_BODY_BYTES):
    raise HTTPException(413, f"the body is {declared} bytes; at most {MAX_BODY_BYTES}.")
  body = bytearray()
  async for chunk in request.stream():
    body += chunk
    if len(body) > MAX_BODY_BYTES:
      raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes.")
  return bytes(body)


async def _json_object(request: Request, required: dict, optional: dict) -> dict:
  """The request's JSON object, checked against {field: type} (400: not a JSON object;
  422: a field missing, unknown or of another type). bool is not an int here."""
  try:
    body = json.loads(await _body(request))
  except (ValueError, RecursionError) as error:  # RecursionError: nesting thousands deep.
    raise HTTPException(400, f"the body is not JSON ({str(error)[:100]}).") from None
  if not isinstance(body, dict):
    raise HTTPException(400, f"the body must be a JSON object, not {type(body).__name__}.")
  fields = required | optional
  unknown = sorted(set(body) - set(fields))
  missing = sorted(set(required) - set(body))
  if unknown or missing:
    raise HTTPException(422, f"fields missing: {missing}, unknown: {unknown}; the fields are "
                        f"{sorted(required)} and, optionally, {sorted(optional)}.")
  for name, value in body.items():
    if type(value) is not fields[name]:
      raise HTTPException(422, f"{name}={value!r} must be a JSON {_JSON_TYPES[fields[name]]}.")
  return body


class _Endpoints:
  """The app's handlers over one generator, its store and the reviewed condition."""

  def __init__(self, generator: generators.TrainedGenerator, store: ReviewStore,
               condition_label: int | None, default_reviewer: str | None):
    self.record = store.generator
    self.store = store
    self.condition_label = condition_label
    self.default_reviewer = default_reviewer
    self.images = SampleImages(generator)
    with open(PAGE_FILE, encoding="utf-8") as f:
      self.page = f.read()

  def label_of(self, seed: int) -> int:
    if self.condition_label is not None:
      return self.condition_label
    return seed % self.record.num_labels

  def sample_json(self, seed: int, label: int) -> dict:
    return {"seed": seed, "label": label, "class": self.record.class_name(label),
            "image": f"/samples/{seed}.png?label={label}"}

  def next_samples(self, reviewer: str, count: int) -> list[dict]:
    labels = ([self.condition_label] if self.condition_label is not None
              else range(self.record.num_labels))
    rated = {label: self.store.rated_seeds(reviewer, label) for label in labels}
    found, seed = [], 0
    while len(found) < count:
      if seed not in rated[self.label_of(seed)]:
        found.append(self.sample_json(seed, self.label_of(seed)))
      seed += 1
    return found

  def show_page(self, request: Request) -> Response:
    del request
    return HTMLResponse(self.page, headers={"Cache-Control": "no-cache"})

  def sample_png(self, request: Request) -> Response:
    seed = _checked_int("seed", request.path_params["seed"], 0, MAX_SEED)
    label = _query_int(request, "label", self.label_of(seed), 0, self.record.num_labels - 1)
    # The generator's identity in the tag: another generator served here later at the same
    # address does not show this one's cached images.
    etag = f'"{self.record.identity[:16]}-{seed}-{label}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
      return Response(status_code=304, headers=headers)
    return Response(self.images.png(seed, label), media_type="image/png", headers=headers)

  def state(self, request: Request) -> Response:
    record, condition_label = self.record, self.condition_label
    reviewer = request.query_params.get("reviewer")
    reviewer = None if reviewer is None else _reviewer(reviewer, 400)
    counts = self.store.counts(reviewer)
    return JSONResponse({
        "generator": {"identity": record.identity, "source": record.source,
                      "step": record.step, "image_shape": list(record.image_shape),
                      "class_names": list(record.class_names),
                      "conditional": record.conditional},
        "condition": None if condition_label is None else {
            "label": condition_label, "class": record.class_name(condition_label)},
        "default_reviewer": self.default_reviewer,
        "counts": self.store.counts(),
        "reviewer": reviewer,
        "reviewer_counts": None if reviewer is None else {
            key: counts[key] for key in ("rated", "accepted", "rejected")}})

  def next_page(self, request: Request) -> Response:
    reviewer = _reviewer(request.query_params.get("reviewer"), 400)
    count = _query_int(request, "count", 1, 1, MAX_SAMPLES_PER_REQUEST)
    return JSONResponse({"samples": self.next_samples(reviewer, count)})

  async def rate(self, request: Request) -> Response:
    record = self.record
    body = await _json_object(
        request, {"generator": str, "seed": int, "label": int, "accepted": bool,
                  "reviewer": str}, {"reason": str})
    if body["generator"] != record.identity:
      raise HTTPException(409, f"generator={body['generator'][:64]!r} is not the generator "
                          f"under review ({record.identity}); reload the page.")
    if not 0 <= body["seed"] <= MAX_SEED:
      raise HTTPException(422, f"seed={body['seed']} must be in 0 .. {MAX_SEED}.")
    if not 0 <= body["label"] < record.num_labels:
      raise HTTPException(422, f"label={body['label']} must be in 0 .. "
                          f"{record.num_labels - 1}.")
    reason = body.get("reason", "")
    if len(reason) > MAX_REASON_CHARS or _has_surrogates(reason):
      raise HTTPException(422, f"reason must be text of at most {MAX_REASON_CHARS} characters "
                          f"(it has {len(reason)}, surrogates: {_has_surrogates(reason)}).")
    rating = Rating(seed=body["seed"], label=body["label"], accepted=body["accepted"],
                    reviewer=_reviewer(body["reviewer"], 422), reason=reason)
    stored = await run_in_threadpool(self.store.rate, rating)
    return JSONResponse(_rating_json(stored, self.store), status_code=201)

  async def undo(self, request: Request) -> Response:
    body = await _json_object(request, {"reviewer": str}, {})
    reviewer = _reviewer(body["reviewer"], 422)
    undone = await run_in_threadpool(self.store.undo_last, reviewer)
    if undone is None:
      raise HTTPException(404, f"{reviewer} has no rating to undo.")
    return JSONResponse(_rating_json(undone, self.store))

  def ratings_csv(self, request: Request) -> Response:
    del request
    text = io.StringIO()
    self.store.write_csv(text)
    return Response(text.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="ratings.csv"'})


def _error_json(request: Request, error: HTTPException) -> Response:
  del request
  return JSONResponse({"error": error.detail}, status_code=error.status_code,
                      headers=error.headers)


def create_app(generator: generators.TrainedGenerator, store: ReviewStore, *, token: str,
               allowed_hosts: Sequence[str] = access.LOOPBACK_NAMES,
               condition_label: int | None = None,
               default_reviewer: str | None = None) -> Starlette:
  """The review app of `generator`, whose ratings go to `store` (of the same generator).
  `token`: the secret every request needs (access.new_token()); `allowed_hosts`: the Host
  names it answers to (access.hosts_for); `condition_label` (see parse_condition): review
  that label's samples only; `default_reviewer`: the name the page offers until a reviewer
  types their own."""
  record = store.generator
  if generator.identity != record.identity:
    raise ValueError(f"{store.path} holds ratings of generator {record.identity[:12]}, not "
                     f"of {generator.identity[:12]}.")
  if condition_label is not None:
    store.check_label(condition_label)
  if default_reviewer is not None:
    try:
      default_reviewer = _reviewer(default_reviewer, 422)
    except HTTPException as error:
      raise ArgumentError(error.detail, argument="reviewer") from None
  endpoints = _Endpoints(generator, store, condition_label, default_reviewer)
  return Starlette(
      middleware=access.middleware(token, allowed_hosts, endpoints.page),
      routes=[Route("/", endpoints.show_page),
              Route("/samples/{seed}.png", endpoints.sample_png),
              Route("/api/state", endpoints.state),
              Route("/api/next", endpoints.next_page),
              Route("/api/ratings", endpoints.rate, methods=["POST"]),
              Route("/api/undo", endpoints.undo, methods=["POST"]),
              Route("/ratings.csv", endpoints.ratings_csv)],
      exception_handlers={HTTPException: _error_json})
