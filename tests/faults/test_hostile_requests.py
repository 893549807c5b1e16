"""The review server against a hostile neighbour: writes from other sites, foreign Host
headers, requests without the token, huge bodies, floods of renders, thousands of malformed
requests, formulas in the ratings export, and damaged or foreign databases.

The generator here renders gray squares (label L is gray 20 * L) without a model, so
thousands of requests take seconds; test_review.py serves a trained one.
"""

import contextlib
import csv
import io
import json
import logging
import os
import random
import socket
import sqlite3
import stat
import threading
import time
import types
import urllib.parse

import numpy as np
import pytest
import uvicorn
from starlette.testclient import TestClient

from pgen.core import files
from pgen.errors import ArgumentError
from pgen.feedback import access, review_app, reviews
from pgen.generation import catalog, generators

TOKEN = "hostile-test-token-0123"
ADDRESS = "http://127.0.0.1:8800"
CLASS_NAMES = ("shirt", "dress", "bag")


def _fake_generator(render_gate: threading.Event | None = None):
  """A conditional generator without a model (3 classes, 8x8 gray); with `render_gate`,
  each render waits for it."""
  def render(z, labels):
    if render_gate is not None:
      render_gate.wait(timeout=60)
    return np.broadcast_to((20 * labels).astype(np.uint8)[:, None, None, None],
                           (len(z), 8, 8, 1))

  return types.SimpleNamespace(render=render, identity="f" * 64, source="/secret/path/run",
                               step=1, conditional=True, image_shape=(8, 8, 1), latent_dim=4,
                               class_names=CLASS_NAMES)


@pytest.fixture
def store(tmp_path):
  return reviews.ReviewStore.open(str(tmp_path / "reviews.sqlite"), _fake_generator())


def _app(store, generator=None):
  return review_app.create_app(generator or _fake_generator(), store, token=TOKEN)


@pytest.fixture
def client(store):
  return TestClient(_app(store), base_url=ADDRESS, raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {TOKEN}"})


def _rating(seed=0, **changes) -> dict:
  return {"generator": "f" * 64, "seed": seed, "label": 0, "accepted": True,
          "reviewer": "anna", **changes}


def _rows(store) -> list[tuple]:
  with contextlib.closing(sqlite3.connect(store.path)) as connection:
    return connection.execute("SELECT seed, reviewer, reason FROM ratings").fetchall()


def test_writes_from_another_site_or_without_the_token_are_refused(client, store):
  body = json.dumps(_rating()).encode()
  foreign = [({"Content-Type": "text/plain", "Origin": "http://evil.example"}, 415),
             ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
             ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
             ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:8801"}, 403),
             ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
             ({"Content-Type": "application/json", "Authorization": "Bearer wrong-token-000"},
              401)]
  for headers, status in foreign:
    for path in ("/api/ratings", "/api/undo"):
      response = client.post(path, content=body, headers=headers)
      assert response.status_code == status, (headers, response.text)
  anonymous = TestClient(_app(store), base_url=ADDRESS)
  for path in ("/", "/api/state", "/api/next?reviewer=anna", "/ratings.csv", "/samples/1.png"):
    response = anonymous.get(path)
    assert response.status_code == 401 and "token" in response.json()["error"], path
  assert anonymous.post("/api/ratings", json=_rating()).status_code == 401
  assert _rows(store) == []
  same_site = client.post("/api/ratings", content=body, headers={
      "Content-Type": "application/json", "Origin": ADDRESS})
  assert same_site.status_code == 201 and _rows(store) == [(0, "anna", "")]


def test_the_token_in_the_printed_url_becomes_a_strict_cookie(store):
  browser = TestClient(_app(store), base_url=ADDRESS, follow_redirects=False)
  assert browser.get("/?token=not-the-token-1234").status_code == 401
  response = browser.get(f"/?token={TOKEN}")
  assert response.status_code == 303 and response.headers["location"] == "/"
  cookie = response.headers["set-cookie"]
  assert cookie.startswith(f"{access.TOKEN_COOKIE}={TOKEN};")
  assert "HttpOnly" in cookie and "SameSite=strict" in cookie
  page = browser.get("/")  # The client keeps the cookie, as a browser does.
  assert page.status_code == 200 and "<script>" in page.text
  assert browser.post("/api/ratings", json=_rating()).status_code == 201


def test_a_foreign_host_gets_nothing_and_every_answer_carries_the_security_headers(store):
  rebinding = TestClient(_app(store), base_url="http://attacker.example:8800",
                         headers={"Authorization": f"Bearer {TOKEN}"})
  refused = rebinding.get("/api/state")
  assert refused.status_code == 400 and "/secret/path" not in refused.text
  assert rebinding.post("/api/ratings", json=_rating()).status_code == 400
  assert _rows(store) == []
  own = TestClient(_app(store), base_url=ADDRESS, headers={"Authorization": f"Bearer {TOKEN}"})
  for response in (refused, own.get("/"), own.get("/api/state"), own.get("/nothing"),
                   TestClient(_app(store), base_url=ADDRESS).get("/")):
    assert response.headers["x-frame-options"] == "DENY", response.url
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'sha256-" in policy
  assert "unsafe-inline" not in policy and "default-src 'none'" in policy
  assert set(access.hosts_for("0.0.0.0", ["review.shop.example"])) >= {
      "127.0.0.1", "localhost", "review.shop.example"}
  assert access.hosts_for("127.0.0.1") == ["127.0.0.1", "::1", "localhost"]


@pytest.mark.parametrize("name, stored", [("anna", "anna"), ("  Zoë  ", "Zoë"),
                                          ("Zoe\u0308", "Zoë"), ("李 明", "李 明")])
def test_reviewer_names_are_normalized(client, store, name, stored):
  assert client.post("/api/ratings", json=_rating(reviewer=name)).status_code == 201
  assert _rows(store) == [(0, stored, "")]


@pytest.mark.parametrize("name", ["\u202eanna", "an\u200dna", "anna\x07", "\ud800", "a" * 65,
                                  "\ue000boss", "", " "])
def test_reviewer_names_with_controls_look_alikes_or_surrogates_are_refused(client, store,
                                                                            name):
  response = client.post("/api/ratings", content=json.dumps(_rating(reviewer=name)),
                         headers={"Content-Type": "application/json"})
  assert response.status_code == 422 and "reviewer" in response.json()["error"]
  assert _rows(store) == []


def test_ratings_csv_cells_are_escaped_for_spreadsheets(client, store):
  reasons = ["=HYPERLINK(\"http://evil.example\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
             "plain, \"quoted\"", "a=b"]
  for seed, reason in enumerate(reasons):
    assert client.post("/api/ratings", json=_rating(seed, reason=reason,
                                                    reviewer="@mallory")).status_code == 201
  response = client.get("/ratings.csv")
  rows = list(csv.DictReader(io.StringIO(response.text)))
  assert [row["reason"] for row in rows] == ["'" + r for r in reasons[:6]] + reasons[6:]
  assert {row["reviewer"] for row in rows} == {"'@mallory"}
  assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
             for row in rows for cell in row.values())


def _served(app):
  """The app served by uvicorn in a thread on a free port of 127.0.0.1; its port."""
  listener = socket.socket()
  listener.bind(("127.0.0.1", 0))
  listener.listen()
  server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
  thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
  thread.start()
  while not server.started:
    time.sleep(0.01)
  return server, thread, listener.getsockname()[1]


@contextlib.contextmanager
def _serving(app):
  server, thread, port = _served(app)
  try:
    yield port
  finally:
    server.should_exit = True
    thread.join(timeout=30)


def _raw_request(port: int, head: str, body: bytes = b"", read_timeout: float = 10) -> str:
  with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as connection:
    connection.sendall(head.encode() + body)
    return connection.recv(65536).decode("latin-1")


def test_a_200_mb_body_is_refused_before_it_is_read(store):
  with _serving(_app(store)) as port:
    head = (f"POST /api/ratings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {200 * 2**20}\r\n\r\n")
    started = time.monotonic()
    answer = _raw_request(port, head, b"[" * 4096)  # 4 KiB of the 200 MB, then nothing.
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    assert time.monotonic() - started < 10  # Answered without waiting for the rest.
    chunked = (f"POST /api/ratings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    assert _raw_request(port, chunked, chunk * 2).startswith("HTTP/1.1 413")
  assert _rows(store) == []


def test_renders_beyond_the_limit_are_asked_to_retry_and_the_state_stays_quick(store):
  gate = threading.Event()
  app = _app(store, _fake_generator(render_gate=gate))
  statuses, lock = [], threading.Lock()
  with _serving(app) as port:
    def fetch(seed):
      head = (f"GET /samples/{seed}.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
              f"Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
      answer = _raw_request(port, head, read_timeout=60)
      with lock:
        statuses.append(answer.split(" ", 2)[1])

    waiting = [threading.Thread(target=fetch, args=(seed,))
               for seed in range(review_app.MAX_RENDERS_IN_FLIGHT)]
    for thread in waiting:
      thread.start()
    time.sleep(1.0)  # Every one of them holds a render slot, waiting for the gate.
    extra = _raw_request(port, f"GET /samples/999.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         f"Authorization: Bearer {TOKEN}\r\n\r\n")
    assert extra.startswith("HTTP/1.1 503") and "Retry-After: 1" in extra.replace(
        "retry-after", "Retry-After"), extra[:400]
    started = time.monotonic()
    state = _raw_request(port, f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         f"Authorization: Bearer {TOKEN}\r\n\r\n")
    assert state.startswith("HTTP/1.1 200") and time.monotonic() - started < 5
    gate.set()
    for thread in waiting:
      thread.join(timeout=60)
  assert statuses == ["200"] * review_app.MAX_RENDERS_IN_FLIGHT


def _quoted(text: str) -> str:
  return urllib.parse.quote(text, safe="", errors="surrogatepass")


def _malformed_requests(rng: random.Random, count: int):
  """(method, path, headers, body) of `count` malformed requests."""
  odd_text = ["\ud800", "\u202e", "\x00", "\uffff", "𝔞𝔫𝔫𝔞", "=1+1", "a" * 5000, "..", "%00",
              "💥", "\U0010ffff"]
  huge = ["9" * rng.choice([11, 20, 400, 5000]), "-1", "1e9", "0x10", "1.5", "NaN", "", "٣"]
  values = [None, True, [], {}, 2**70, -2**70, 1.5e308, float("nan"), *odd_text, *huge]
  for _ in range(count):
    kind = rng.randrange(7)
    headers = {"Content-Type": "application/json"}
    if kind == 0:
      yield "POST", "/api/ratings", headers, bytes(rng.randrange(256) for _ in range(
          rng.randrange(1, 200)))
    elif kind == 1:
      body = _rating(rng.randrange(10))
      body[rng.choice([*body, "extra"])] = rng.choice(values)
      yield "POST", rng.choice(["/api/ratings", "/api/undo"]), headers, json.dumps(
          body, allow_nan=True).encode()
    elif kind == 2:
      depth = rng.choice([100, 1000, 10_000, 100_000])
      yield "POST", "/api/ratings", headers, ("[" * depth + "]" * depth).encode()
    elif kind == 3:
      yield "GET", f"/samples/{_quoted(rng.choice(huge + odd_text))}.png", {}, b""
    elif kind == 4:
      query = rng.choice([f"reviewer={_quoted(rng.choice(odd_text))}",
                          f"count={_quoted(rng.choice(huge))}",
                          f"reviewer=anna&count={_quoted(rng.choice(huge))}", "reviewer=%ud800"])
      yield "GET", rng.choice(["/api/next?", "/api/state?"]) + query, {}, b""
    elif kind == 5:
      yield "GET", f"/samples/1.png?label={_quoted(rng.choice(huge))}", {}, b""
    else:
      yield rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS"]), rng.choice(
          ["/api/ratings", "/", "/ratings.csv"]), headers, b"{}"


def test_thousands_of_malformed_requests_get_4xx_and_no_traceback(client, store, caplog):
  caplog.set_level(logging.DEBUG)
  statuses = {}
  for method, path, headers, body in _malformed_requests(random.Random(2026), 2000):
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code < 500, (method, path, body[:200], response.text[:300])
    if response.status_code >= 400:
      assert "\n" not in response.json()["error"]
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
  assert set(statuses) <= {200, 201, 400, 404, 405, 409, 413, 415, 422}, statuses
  assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
  assert all(0 <= seed <= generators.MAX_SEED for seed, _, _ in _rows(store))


def test_seeds_past_32_bits_are_refused_where_samples_are_made(tmp_path):
  generator = _fake_generator()
  for seeds in ([generators.MAX_SEED + 1], [-1], [0, 2**64]):
    with pytest.raises(ArgumentError, match=r"outside 0 \.\. 4294967295"):
      generators.latents_for_seeds(generator, seeds)
  with pytest.raises(ArgumentError, match="seed=4294967296 is outside"):
    generators.sample(generator, 2, seed=2**32)
  out = tmp_path / "catalog"
  with pytest.raises(ArgumentError, match="seed=4294967296 is outside"):
    catalog.write_catalog(generator, str(out), 2, seed=generators.MAX_SEED)
  assert not out.exists()  # Refused before anything was written.


def _damage(path: str) -> None:
  """Overwrites the middle of the database file (past its header page) with garbage."""
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.seek(size // 2)
    f.write(b"\xa5" * 4096)


@pytest.mark.parametrize("damage, message", [
    ("garbage", "is not a readable SQLite database"),
    ("foreign", "is not a pgen reviews database"),
    ("two_generators", "should name one generator"),
    ("corrupt_page", "(is damaged|is not a readable SQLite database)"),
])
def test_a_damaged_or_foreign_database_is_one_message_naming_it(tmp_path, damage, message):
  path = str(tmp_path / "reviews.sqlite")
  generator = _fake_generator()
  if damage == "garbage":
    with open(path, "wb") as f:
      f.write(b"SQLite format 3\x00" + bytes(range(256)) * 16)
  elif damage == "foreign":
    with contextlib.closing(sqlite3.connect(path)) as connection:
      connection.execute("CREATE TABLE ratings (x)")
  else:
    reviews.ReviewStore.open(path, generator)
    with contextlib.closing(sqlite3.connect(path)) as connection:
      connection.executemany(
          "INSERT INTO ratings (generator, seed, label, accepted, reason, reviewer, created) "
          "VALUES (?, ?, 0, 1, ?, 'anna', '')", [("f" * 64, seed, "x" * 100)
                                                   for seed in range(2000)])
      connection.commit()
      connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
      if damage == "two_generators":
        connection.execute("INSERT INTO generator SELECT 'g' || identity, source, step, "
                           "image_shape, class_names, conditional, latent_dim, created "
                           "FROM generator")
        connection.commit()
    if damage == "corrupt_page":
      _damage(path)
  for open_store in (lambda: reviews.ReviewStore.open(path, generator),
                     lambda: reviews.ReviewStore.read(path)):
    with pytest.raises(ArgumentError, match=message) as raised:
      open_store()
    assert path in str(raised.value) and raised.value.argument == "db"


def test_a_database_on_a_network_filesystem_is_warned_about(tmp_path, monkeypatch, caplog):
  mounts = tmp_path / "mounts"
  mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {tmp_path} nfs4 rw 0 0\n")
  monkeypatch.setattr(reviews, "MOUNTS", str(mounts))
  caplog.set_level(logging.WARNING)
  reviews.ReviewStore.open(str(tmp_path / "ratings" / "reviews.sqlite"), _fake_generator())
  assert "nfs4 network filesystem" in caplog.text and "local disk" in caplog.text
  caplog.clear()
  mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {tmp_path}/other nfs4 rw 0 0\n")
  reviews.ReviewStore.open(str(tmp_path / "local" / "reviews.sqlite"), _fake_generator())
  assert "network filesystem" not in caplog.text


def test_a_private_database_is_its_owner_s_alone_and_a_shared_one_follows_the_umask(tmp_path):
  modes = {}
  for private in (True, False):
    path = str(tmp_path / f"private_{private}" / "reviews.sqlite")
    store = reviews.ReviewStore.open(path, _fake_generator(), private=private)
    store.rate(reviews.Rating(seed=1, label=0, accepted=True, reviewer="anna"))
    with contextlib.closing(sqlite3.connect(path)) as reader:  # Holds the WAL files open.
      reader.execute("SELECT COUNT(*) FROM ratings").fetchone()
      modes[private] = {os.path.basename(name): stat.S_IMODE(os.stat(name).st_mode)
                        for name in (path, path + "-wal", path + "-shm")}
  assert set(modes[True].values()) == {0o600}
  assert set(modes[False].values()) == {0o666 & ~files.umask()}
