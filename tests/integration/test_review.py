"""`python -m pgen review`: the API in process (Starlette's TestClient), then the page as
reviewers use it: the command in a subprocess, headless Chromium driven by Selenium.

PGEN_REVIEW_SCREENSHOT=docs/review.png saves the page's screenshot there (the README's);
otherwise it goes to the test's tmp_path.
"""

import contextlib
import http.client
import io
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from starlette.testclient import TestClient

from pgen.errors import ArgumentError
from pgen.feedback import review_app, reviews
from pgen.generation import generators

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_START_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 30
TOKEN = "test-token-0123456789"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


def _rows(db: str, reviewer: str | None = None) -> list[tuple]:
  """(seed, label, accepted, reason, reviewer) of the ratings, oldest first, read directly."""
  where, args = ("WHERE reviewer = ?", (reviewer,)) if reviewer else ("", ())
  with contextlib.closing(sqlite3.connect(db)) as connection:
    return connection.execute("SELECT seed, label, accepted, reason, reviewer FROM ratings "
                              f"{where} ORDER BY id", args).fetchall()


# The API, in process.

@pytest.fixture(scope="module")
def generator(smoke_run):
  return generators.load(smoke_run)


@pytest.fixture
def store(generator, tmp_path):
  return reviews.ReviewStore.open(str(tmp_path / "reviews.sqlite"), generator)


def _client(app) -> TestClient:
  """A client with the token, at the address a server on 127.0.0.1 answers to."""
  return TestClient(app, base_url="http://127.0.0.1:8800",
                    headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(generator, store):
  return _client(review_app.create_app(generator, store, token=TOKEN, default_reviewer="anna"))


def _rating(identity: str, seed: int, accepted: bool = True, reviewer: str = "anna",
            label: int = 0, **more) -> dict:
  return {"generator": identity, "seed": seed, "label": label, "accepted": accepted,
          "reviewer": reviewer, **more}


def test_next_samples_are_the_smallest_seeds_the_reviewer_has_not_rated(client, generator):
  for seed in (0, 1, 3):
    assert client.post("/api/ratings", json=_rating(generator.identity, seed)).status_code == 201
  anna = client.get("/api/next", params={"reviewer": "anna", "count": 3}).json()["samples"]
  assert anna == [{"seed": seed, "label": 0, "class": "all",
                   "image": f"/samples/{seed}.png?label=0"} for seed in (2, 4, 5)]
  ben = client.get("/api/next", params={"reviewer": "ben"}).json()["samples"]
  assert [sample["seed"] for sample in ben] == [0]


def test_a_rating_is_stored_counted_and_undone(client, generator, store):
  response = client.post("/api/ratings",
                         json=_rating(generator.identity, 4, False, reason="smeared"))
  assert response.status_code == 201
  stored = response.json()
  assert {key: stored[key] for key in ("seed", "label", "accepted", "reason", "reviewer")} == {
      "seed": 4, "label": 0, "accepted": False, "reason": "smeared", "reviewer": "anna"}
  client.post("/api/ratings", json=_rating(generator.identity, 5, reviewer="ben"))
  state = client.get("/api/state", params={"reviewer": "anna"}).json()
  assert state["generator"]["identity"] == generator.identity
  assert state["generator"]["step"] == generator.step
  assert state["default_reviewer"] == "anna" and state["condition"] is None
  assert state["reviewer_counts"] == {"rated": 1, "accepted": 0, "rejected": 1}
  assert state["counts"]["rated"] == 2 and state["counts"]["reviewers"] == 2

  undone = client.post("/api/undo", json={"reviewer": "anna"})
  assert undone.status_code == 200 and undone.json()["id"] == stored["id"]
  assert _rows(store.path) == [(5, 0, 1, "", "ben")]
  nothing_left = client.post("/api/undo", json={"reviewer": "anna"})
  assert nothing_left.status_code == 404 and "no rating to undo" in nothing_left.json()["error"]


def test_sample_images_are_rendered_from_seed_and_label(client, generator):
  response = client.get("/samples/3.png", params={"label": 0})
  assert response.status_code == 200 and response.headers["content-type"] == "image/png"
  image = np.asarray(Image.open(io.BytesIO(response.content)))
  assert image.shape == (256, 256)  # 32 x 32 grayscale, enlarged 8 times.
  expected = np.asarray(generator.render(generators.latents_for_seeds(generator, [3]), None))
  np.testing.assert_array_equal(image[::8, ::8], expected[0, ..., 0])
  again = client.get("/samples/3.png?label=0",
                     headers={"If-None-Match": response.headers["etag"]})
  assert again.status_code == 304 and not again.content


def test_the_csv_lists_every_rating(client, generator):
  client.post("/api/ratings", json=_rating(generator.identity, 2, False, reason="a, \"b\""))
  client.post("/api/ratings", json=_rating(generator.identity, 0, reviewer="ben"))
  response = client.get("/ratings.csv")
  assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
  lines = response.text.splitlines()
  assert lines[0].startswith("id,seed,label,class,accepted,reason,reviewer,generator")
  assert lines[1].startswith('1,2,0,all,0,"a, ""b""",anna,') and len(lines) == 3


_MISSING = object()


def _body(changes: dict) -> dict:
  """A valid rating (seed 5 by anna) with `changes` (_MISSING deletes a field)."""
  body = _rating("IDENTITY", 5) | changes
  return {key: value for key, value in body.items() if value is not _MISSING}


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/api/ratings", b"{seed: 1", 400),
    ("POST", "/api/ratings", b"[1, 2]", 400),
    ("POST", "/api/ratings", b"", 400),
    ("POST", "/api/ratings", _body({"seed": _MISSING}), 422),
    ("POST", "/api/ratings", _body({"accepted": _MISSING}), 422),
    ("POST", "/api/ratings", _body({"seed": "5"}), 422),
    ("POST", "/api/ratings", _body({"seed": True}), 422),
    ("POST", "/api/ratings", _body({"seed": 5.0}), 422),
    ("POST", "/api/ratings", _body({"seed": -1}), 422),
    ("POST", "/api/ratings", _body({"seed": 2**32}), 422),
    ("POST", "/api/ratings", _body({"label": 1}), 422),  # The generator is unconditional.
    ("POST", "/api/ratings", _body({"label": -1}), 422),
    ("POST", "/api/ratings", _body({"accepted": "yes"}), 422),
    ("POST", "/api/ratings", _body({"reviewer": "  "}), 422),
    ("POST", "/api/ratings", _body({"reviewer": 7}), 422),
    ("POST", "/api/ratings", _body({"reason": 3}), 422),
    ("POST", "/api/ratings", _body({"reason": "x" * 2001}), 422),
    ("POST", "/api/ratings", _body({"rating": "good"}), 422),
    ("POST", "/api/ratings", _body({"generator": "0" * 64}), 409),
    ("POST", "/api/undo", b"reviewer=anna", 400),
    ("POST", "/api/undo", {}, 422),
    ("POST", "/api/undo", {"reviewer": "zoe"}, 404),
    ("GET", "/api/next", None, 400),
    ("GET", "/api/next?reviewer=anna&count=0", None, 422),
    ("GET", "/api/next?reviewer=anna&count=101", None, 422),
    ("GET", "/api/next?reviewer=anna&count=x", None, 422),
    ("GET", "/api/next?reviewer=anna&count=" + "9" * 5000, None, 422),
    ("GET", "/samples/-1.png", None, 422),
    ("GET", "/samples/4294967296.png", None, 422),
    ("GET", "/samples/" + "9" * 5000 + ".png", None, 422),
    ("GET", "/samples/1.png?label=1", None, 422),
    ("GET", "/samples/x.png", None, 422),
    ("GET", "/review_page.html", None, 404),
    ("GET", "/api/ratings", None, 405),
    ("DELETE", "/api/ratings", None, 405),
])
def test_a_malformed_request_gets_a_4xx_and_changes_nothing(client, generator, store, method,
                                                            path, body, status):
  client.post("/api/ratings", json=_rating(generator.identity, 0, reason="first"))
  before = _rows(store.path)
  if isinstance(body, dict):
    body = json.dumps({key: generator.identity if value == "IDENTITY" else value
                       for key, value in body.items()}).encode()
  response = client.request(method, path, content=body,
                            headers={"Content-Type": "application/json"})
  assert response.status_code == status, response.text
  assert response.json()["error"]
  assert _rows(store.path) == before == [(0, 0, 1, "first", "anna")]


def _conditional_generator(tmp_path):
  """A class-conditional generator without a model: label L renders as gray 20 * L."""
  record = reviews.GeneratorRecord(identity="c" * 64, source="fake", step=1,
                                   image_shape=(8, 8, 1), class_names=CLASS_NAMES,
                                   conditional=True, latent_dim=4)

  def render(z, labels):
    return np.broadcast_to((20 * labels).astype(np.uint8)[:, None, None, None],
                           (len(z), 8, 8, 1))

  fake = types.SimpleNamespace(render=render, identity=record.identity, source="fake",
                               conditional=True, image_shape=(8, 8, 1), latent_dim=4,
                               class_names=CLASS_NAMES)
  return fake, reviews.ReviewStore.open(str(tmp_path / "reviews.sqlite"), record)


def test_a_conditional_generator_s_labels_follow_the_seed_or_the_condition(tmp_path):
  fake, store = _conditional_generator(tmp_path)
  client = _client(review_app.create_app(fake, store, token=TOKEN))
  samples = client.get("/api/next?reviewer=anna&count=12").json()["samples"]
  assert [(s["seed"], s["label"], s["class"]) for s in samples] == [
      (seed, seed % 10, CLASS_NAMES[seed % 10]) for seed in range(12)]
  image = Image.open(io.BytesIO(client.get("/samples/5.png?label=7").content))
  assert image.size == (256, 256) and set(np.asarray(image).ravel()) == {140}
  assert set(np.asarray(Image.open(io.BytesIO(client.get("/samples/5.png").content)))
             .ravel()) == {100}  # Without ?label=, the seed's own label.
  assert client.post("/api/ratings", json=_rating(fake.identity, 0, label=10)).status_code == 422

  dresses = _client(review_app.create_app(fake, store, token=TOKEN, condition_label=3))
  assert dresses.get("/api/state").json()["condition"] == {"label": 3, "class": "Dress"}
  assert dresses.post("/api/ratings", json=_rating(fake.identity, 0, label=3)).status_code == 201
  samples = dresses.get("/api/next?reviewer=anna&count=3").json()["samples"]
  assert [(s["seed"], s["label"]) for s in samples] == [(1, 3), (2, 3), (3, 3)]


def test_the_condition_names_a_label_of_a_conditional_generator(tmp_path, generator):
  fake, _ = _conditional_generator(tmp_path)
  assert review_app.parse_condition("label=Dress", fake) == 3
  assert review_app.parse_condition("label=8", fake) == 8
  for spec, message in [("color=red", "the keys are label"), ("Dress", "the keys are label"),
                        ("label=Sock", "label=Sock is not a value of this run"),
                        ("label=10", "label=10 is not a value of this run"),
                        ("label=Dress|Bag", "selects 2 classes; this output takes one")]:
    with pytest.raises(ArgumentError, match=message) as raised:
      review_app.parse_condition(spec, fake)
    assert raised.value.argument == "condition"
  with pytest.raises(ArgumentError, match="needs a class-conditional generator"):
    review_app.parse_condition("label=0", generator)


# The command and the page.

def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def _pgen_env() -> dict:
  return dict(os.environ, JAX_PLATFORMS="cpu")


class ReviewServer:
  """`python -m pgen review` in a subprocess, on one port for its life: a restarted server
  is the same address with the same token (the first start's, given back through
  $PGEN_REVIEW_TOKEN), so the browser reloads the same page with its cookie."""

  def __init__(self, workdir: str, log_dir: str, *args: str):
    self.port = _free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    self.command = [sys.executable, "-m", "pgen", "review", "--workdir", workdir,
                    "--port", str(self.port), *args]
    self.log_dir, self.starts, self.process, self.token = log_dir, 0, None, None

  @property
  def page_url(self) -> str:
    """The URL the server prints: opened once, it leaves the token in a cookie."""
    return f"{self.url}/?token={self.token}"

  @property
  def stderr_path(self) -> str:
    return os.path.join(self.log_dir, f"server-{self.starts}.stderr")

  def start(self) -> str:
    """Starts the server; its line "Reviewing ... at URL (ratings in DB)"."""
    self.starts += 1
    env = _pgen_env() | ({} if self.token is None else {"PGEN_REVIEW_TOKEN": self.token})
    with open(self.stderr_path, "w") as stderr:
      self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=stderr)
    ready, _, _ = select.select([self.process.stdout], [], [], SERVER_START_TIMEOUT_S)
    line = self.process.stdout.readline() if ready else ""
    printed = re.search(rf"at {re.escape(self.url)}/\?token=([A-Za-z0-9_-]{{32}}) ", line)
    assert line.startswith("Reviewing") and printed, (
        f"{line!r}; stderr: {self.stderr()[-3000:]}")
    assert self.token in (None, printed[1])
    self.token = printed[1]
    return line

  def stderr(self) -> str:
    with open(self.stderr_path) as f:
      return f.read()

  def stop(self, signal_number: int = signal.SIGTERM) -> int:
    """Sends the signal; the exit status."""
    self.process.send_signal(signal_number)
    status = self.process.wait(timeout=60)
    self.process.stdout.close()
    assert "Traceback" not in self.stderr(), self.stderr()[-3000:]
    return status


@pytest.fixture(scope="module")
def review_run(smoke_run, tmp_path_factory):
  """A copy of the smoke run, where the server keeps its default database."""
  workdir = str(tmp_path_factory.mktemp("review") / "run")
  shutil.copytree(smoke_run, workdir)
  return workdir


@pytest.fixture(scope="module")
def server(review_run, tmp_path_factory):
  server = ReviewServer(review_run, str(tmp_path_factory.mktemp("review_logs")),
                        "--reviewer", "anna")
  line = server.start()
  assert line.endswith(f"(ratings in {os.path.join(review_run, 'reviews.sqlite')})\n")
  yield server
  assert server.stop() == -signal.SIGTERM  # uvicorn stops, then re-raises the signal.


def _chromium() -> webdriver.Chrome:
  options = webdriver.ChromeOptions()
  options.binary_location = "/usr/bin/chromium"
  for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                   "--window-size=900,860"):
    options.add_argument(argument)
  options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
  return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


@pytest.fixture(scope="module")
def browser():
  driver = _chromium()
  yield driver
  driver.quit()


def _waiting(driver) -> WebDriverWait:
  return WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.05)


def _shown(driver) -> tuple:
  """(reviewer, ratings of theirs, seed on screen) as the page shows them."""
  return tuple(driver.execute_script(
      "const progress = document.getElementById('progress');"
      "return [progress.dataset.reviewer, Number(progress.dataset.rated),"
      "        Number(document.getElementById('sample').dataset.seed)]"))


def _wait_for(driver, expected: tuple) -> None:
  try:
    _waiting(driver).until(lambda d: _shown(d) == expected)
  except TimeoutException:
    raise AssertionError(f"the page shows {_shown(driver)}, not {expected}") from None


def _open_as(driver, url: str, reviewer: str) -> None:
  """The page, with `reviewer` typed into the name field."""
  driver.get(url)
  field = driver.find_element(By.ID, "reviewer")
  _waiting(driver).until(lambda d: field.get_attribute("value"))
  field.send_keys(Keys.CONTROL, "a")
  field.send_keys(reviewer, Keys.ENTER)
  _waiting(driver).until(lambda d: _shown(d)[0] == reviewer)


def _press(driver, key: str) -> None:
  ActionChains(driver).send_keys(key).perform()


def _unrated_seeds(db: str, reviewer: str, count: int) -> list[int]:
  rated = {row[0] for row in _rows(db, reviewer)}
  return [seed for seed in range(len(rated) + count) if seed not in rated][:count]


def _errors_in_console(driver) -> list:
  return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_a_reviewer_rates_with_the_keyboard_and_a_killed_server_keeps_the_ratings(
    server, browser, review_run, tmp_path):
  db = os.path.join(review_run, "reviews.sqlite")
  browser.get(server.page_url)
  assert browser.current_url == server.url + "/"  # The token left the address bar.
  browser.execute_script("localStorage.clear()")
  browser.refresh()  # The name field offers --reviewer's name.
  _waiting(browser).until(lambda d: _shown(d)[0] == "anna")
  assert browser.find_element(By.ID, "reviewer").get_attribute("value") == "anna"
  rated_before = len(_rows(db, "anna"))
  seeds = _unrated_seeds(db, "anna", 21)
  keys = ["k", "r", Keys.ARROW_RIGHT, Keys.ARROW_LEFT, "k"] * 4
  accepted = [key in ("k", Keys.ARROW_RIGHT) for key in keys]
  _wait_for(browser, ("anna", rated_before, seeds[0]))
  for i, key in enumerate(keys):
    if i == 6:  # Typed into the reason field, "r" and "k" rate nothing (the exact counts
      reason = browser.find_element(By.ID, "reason")  # and rows below would show it).
      reason.click()
      reason.send_keys("smeared, dark")
      reason.send_keys(Keys.ESCAPE)
    _press(browser, key)
    _wait_for(browser, ("anna", rated_before + i + 1, seeds[i + 1]))
    if i == 6:
      screenshot = os.environ.get("PGEN_REVIEW_SCREENSHOT") or str(tmp_path / "review.png")
      assert browser.save_screenshot(screenshot)
      picture = Image.open(screenshot)
      assert picture.size[0] >= 800 and len(picture.getcolors(2**24)) > 10
      assert browser.find_element(By.ID, "message").text == (
          f"Rejected seed {seeds[6]} (smeared, dark).")

  _press(browser, Keys.BACKSPACE)  # Undoes the 20th rating: its sample is next again.
  _wait_for(browser, ("anna", rated_before + 19, seeds[19]))
  assert browser.find_element(By.ID, "message").text == (
      f"Undid the keep of seed {seeds[19]}.")
  _press(browser, "k")
  _wait_for(browser, ("anna", rated_before + 20, seeds[20]))
  _press(browser, "u")
  _wait_for(browser, ("anna", rated_before + 19, seeds[19]))
  reasons = ["smeared, dark" if i == 6 else "" for i in range(19)]
  assert _rows(db, "anna")[rated_before:] == [
      (seed, 0, int(keep), reason, "anna")
      for seed, keep, reason in zip(seeds[:19], accepted, reasons)]

  assert server.stop(signal.SIGKILL) == -signal.SIGKILL  # Killed: no chance to clean up.
  server.start()
  browser.refresh()
  _wait_for(browser, ("anna", rated_before + 19, seeds[19]))
  assert browser.find_element(By.ID, "progress").text.startswith(
      f"{rated_before + 19} rated by you")
  assert not _errors_in_console(browser)


def test_two_reviewers_rate_at_the_same_time(server, browser, review_run):
  db = os.path.join(review_run, "reviews.sqlite")
  other = _chromium()
  try:
    drivers = {"anna": browser, "ben": other}
    before = {name: len(_rows(db, name)) for name in drivers}
    seeds = {name: _unrated_seeds(db, name, 11) for name in drivers}
    for name, driver in drivers.items():
      _open_as(driver, server.page_url, name)
      _wait_for(driver, (name, before[name], seeds[name][0]))
    failures = []

    def rate_ten(name):
      try:
        for i in range(10):
          _press(drivers[name], "k" if i % 3 else "r")
          _wait_for(drivers[name], (name, before[name] + i + 1, seeds[name][i + 1]))
      except Exception as error:  # noqa: BLE001  Reported by the main thread.
        failures.append(f"{name}: {error}")

    threads = [threading.Thread(target=rate_ten, args=(name,)) for name in drivers]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
    assert not failures
    for name, driver in drivers.items():
      assert _rows(db, name)[before[name]:] == [
          (seed, 0, int(i % 3 != 0), "", name) for i, seed in enumerate(seeds[name][:10])]
      assert not driver.find_element(By.ID, "message").get_attribute("class")  # No error.
      assert not _errors_in_console(driver)
  finally:
    other.quit()


def test_grid_mode_rates_a_page_of_samples(server, browser, review_run):
  db = os.path.join(review_run, "reviews.sqlite")
  seeds = _unrated_seeds(db, "gail", 12)
  _open_as(browser, server.page_url, "gail")
  browser.find_element(By.ID, "grid-mode").click()
  tiles = _waiting(browser).until(
      lambda d: d.find_elements(By.CSS_SELECTOR, "#grid .tile"))
  assert [int(tile.get_attribute("data-seed")) for tile in tiles] == seeds
  for tile in (tiles[1], tiles[4], tiles[7]):
    tile.click()
  tiles[7].click()  # Changed their mind: kept after all.
  browser.find_element(By.ID, "reason").send_keys("blurry")
  browser.find_element(By.ID, "submit-page").click()
  _waiting(browser).until(lambda d: _shown(d)[:2] == ("gail", 12))
  assert browser.find_element(By.ID, "message").text == "Kept 10, rejected 2."
  assert _rows(db, "gail") == [
      (seed, 0, int(i not in (1, 4)), "blurry" if i in (1, 4) else "", "gail")
      for i, seed in enumerate(seeds)]
  browser.refresh()  # The name is remembered.
  _waiting(browser).until(lambda d: _shown(d)[:2] == ("gail", 12))
  assert browser.find_element(By.ID, "reviewer").get_attribute("value") == "gail"
  csv_text = browser.execute_script(
      "return fetch(document.getElementById('download').href).then((r) => r.text())")
  assert csv_text.count(",gail,") == 12


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/static/../pgen/feedback/reviews.py",
                                  "/samples/../../pgen/feedback/review_app.py", "/%2e%2e/etc/passwd",
                                  "/pgen/feedback/review_page.html"])
def test_paths_outside_the_app_are_not_found(server, path):
  for headers, status in [({}, 401), ({"Authorization": f"Bearer {server.token}"}, 404)]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", path, headers=headers)  # As written: no client normalization.
    response = connection.getresponse()
    assert response.status == status and b"import" not in response.read()
    connection.close()


def _one_error(*args: str) -> str:
  """The error line of `python -m pgen review ARGS`, which must fail as a user sees it."""
  result = subprocess.run([sys.executable, "-m", "pgen", "review", *args], cwd=ROOT,
                          env=_pgen_env(), capture_output=True, text=True,
                          timeout=SERVER_START_TIMEOUT_S)
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if ": error: " in line]
  assert len(errors) == 1 and not result.stdout, result.stderr[-3000:]
  return errors[0]


def test_a_database_of_another_generator_is_refused(server, review_run):
  db = os.path.join(review_run, "reviews.sqlite")
  before = _rows(db)
  error = _one_error("--workdir", review_run, "--step", "3", "--port", "0")
  assert error.startswith(f"pgen review: error: --db={db} holds ratings of another generator")
  assert "step 6" in error and _rows(db) == before


def test_a_port_in_use_or_a_condition_without_classes_is_one_message(server, review_run,
                                                                       tmp_path):
  db = str(tmp_path / "reviews.sqlite")
  error = _one_error("--workdir", review_run, "--port", str(server.port), "--db", db)
  assert error.startswith(f"pgen review: error: --port={server.port}: cannot serve on "
                          f"127.0.0.1:{server.port} (Address already in use)")
  error = _one_error("--workdir", review_run, "--port", "0", "--db", db,
                     "--condition", "label=Dress")
  assert "--condition=label=Dress needs a class-conditional generator" in error
  error = _one_error("--workdir", review_run, "--port", "0", "--db", db, "--token", "1234")
  assert "--token must be 16 to 256 letters, digits, - or _" in error
  assert not os.path.exists(db)
