"""The feedback loop below the review page: the ratings database, `feedback fit`, and
`generate --accept`, on the shared smoke run with a simulated reviewer."""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest
from PIL import Image

from pgen.errors import ArgumentError, ConfigError
from pgen.feedback import acceptance, reviews, simulated_reviewer
from pgen.generation import catalog, generators
from pgen.training.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pgen(*args):
  return subprocess.run([sys.executable, "-m", "pgen", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def _error(result) -> str:
  assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
  return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def generator(smoke_run):
  return generators.load(smoke_run)


@pytest.fixture(scope="module")
def bright_judge(generator):
  """A reviewer who accepts the brighter half of the smoke generator's samples."""
  images = generator.render(generators.latents_for_seeds(generator, range(400)), None)
  return simulated_reviewer.brighter_than(
      float(np.median(images.reshape(400, -1).mean(1))) / 255.0)


@pytest.fixture(scope="module")
def rated(generator, bright_judge, tmp_path_factory):
  """A database of 200 simulated ratings of the smoke run, and the model fitted on them."""
  path = str(tmp_path_factory.mktemp("rated") / reviews.FILE_NAME)
  store = reviews.ReviewStore.open(path, generator)
  simulated_reviewer.rate_seeds(store, generator, range(200), bright_judge)
  model, report = acceptance.fit(store, generator)
  return store, model, report


def test_a_rating_is_stored_replaced_by_its_reviewer_and_undone(generator, tmp_path):
  store = reviews.ReviewStore.open(str(tmp_path / "r.sqlite"), generator)
  store.rate(reviews.Rating(seed=3, label=0, accepted=True, reviewer="anna"))
  store.rate(reviews.Rating(seed=3, label=0, accepted=False, reviewer="anna", reason="smeared"))
  store.rate(reviews.Rating(seed=3, label=0, accepted=True, reviewer="ben"))
  store.rate(reviews.Rating(seed=4, label=0, accepted=True, reviewer="anna"))
  assert [(r.seed, r.accepted, r.reviewer) for r in store.ratings()] == [
      (3, False, "anna"), (3, True, "ben"), (4, True, "anna")]
  assert store.counts() == {"rated": 3, "accepted": 2, "rejected": 1, "samples": 2,
                            "reviewers": 2}
  assert store.counts("anna")["rated"] == 2
  undone = store.undo_last("anna")
  assert (undone.seed, undone.reviewer) == (4, "anna")
  assert store.rated_seeds("anna", 0) == {3}
  assert store.undo_last("carl") is None
  store.rate(reviews.Rating(seed=4, label=0, accepted=True, reviewer="anna"))
  store.rate(reviews.Rating(seed=3, label=0, accepted=False, reviewer="anna", reason="torn"))
  assert store.undo_last("anna").seed == 3  # The latest rating made, though 3's row is older.
  assert store.rated_seeds("anna", 0) == {4}
  text = io.StringIO()
  store.write_csv(text)
  rows = list(csv.DictReader(io.StringIO(text.getvalue())))
  assert [(r["seed"], r["accepted"], r["reviewer"], r["class"]) for r in rows] == [
      ("3", "1", "ben", "all"), ("4", "1", "anna", "all")]
  assert {r["generator"] for r in rows} == {generator.identity}


def test_the_database_is_wal_versioned_and_names_its_generator(generator, tmp_path):
  path = str(tmp_path / "r.sqlite")
  reviews.ReviewStore.open(path, generator)
  with sqlite3.connect(path) as connection:
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == reviews.SCHEMA_VERSION
    assert connection.execute("SELECT identity FROM generator").fetchall() == [
        (generator.identity,)]
  assert reviews.ReviewStore.read(path).generator == reviews.GeneratorRecord.of(generator)


def test_ratings_of_another_generator_are_refused_not_mixed(smoke_run, generator, tmp_path):
  path = str(tmp_path / "r.sqlite")
  store = reviews.ReviewStore.open(path, generator)
  store.rate(reviews.Rating(seed=1, label=0, accepted=True, reviewer="anna"))
  earlier = generators.load(smoke_run, step=3)
  assert earlier.identity != generator.identity
  with pytest.raises(ArgumentError, match="another generator.*its own --db"):
    reviews.ReviewStore.open(path, earlier)
  assert len(reviews.ReviewStore.read(path).ratings()) == 1


def test_a_file_that_is_not_a_reviews_database_is_refused(generator, tmp_path):
  text = tmp_path / "notes.sqlite"
  text.write_text("not a database at all, just some notes\n" * 10)
  with pytest.raises(ArgumentError, match="not a readable SQLite database"):
    reviews.ReviewStore.open(str(text), generator)
  other = str(tmp_path / "other.sqlite")
  with sqlite3.connect(other) as connection:
    connection.execute("CREATE TABLE orders (id INTEGER)")
  with pytest.raises(ArgumentError, match="not a pgen reviews database"):
    reviews.ReviewStore.open(other, generator)
  with sqlite3.connect(other) as connection:
    assert connection.execute("SELECT name FROM sqlite_master").fetchall() == [("orders",)]


def test_bad_ratings_change_nothing(generator, tmp_path):
  store = reviews.ReviewStore.open(str(tmp_path / "r.sqlite"), generator)
  for bad in (reviews.Rating(seed=-1, label=0, accepted=True, reviewer="anna"),
              reviews.Rating(seed=1, label=1, accepted=True, reviewer="anna"),
              reviews.Rating(seed=1, label=0, accepted=True, reviewer="")):
    with pytest.raises(ArgumentError):
      store.rate(bad)
  assert store.ratings() == []


def test_reviewers_writing_at_once_lose_no_rating(generator, tmp_path):
  store = reviews.ReviewStore.open(str(tmp_path / "r.sqlite"), generator)

  def review(name):
    for seed in range(100):
      store.rate(reviews.Rating(seed=seed, label=0, accepted=seed % 3 == 0, reviewer=name))

  threads = [threading.Thread(target=review, args=(name,)) for name in ("anna", "ben", "carl")]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert store.counts() == {"rated": 300, "accepted": 102, "rejected": 198, "samples": 100,
                            "reviewers": 3}


def test_fit_learns_the_reviewer_and_reports_cross_validation(rated, generator, bright_judge):
  store, model, report = rated
  assert report["ratings"] == 200 and report["folds"] == acceptance.FOLDS
  assert report["cv_auc"] > 0.8, report
  assert sum(row["ratings"] for row in report["calibration"]) == 200
  # On samples it never saw, the model ranks what the reviewer accepts above the rest.
  seeds = np.arange(1000, 1300)
  images = generator.render(generators.latents_for_seeds(generator, seeds), None)
  assert acceptance.auc(model.probability(images, None), bright_judge(images)) > 0.8


def test_a_saved_model_gives_the_same_probabilities_and_its_reward_is_their_log(
    rated, generator, tmp_path):
  _, model, _ = rated
  loaded = acceptance.AcceptanceModel.load(model.save(str(tmp_path / "acc")))
  images = generator.render(generators.latents_for_seeds(generator, range(32)), None)
  np.testing.assert_allclose(loaded.probability(images, None), model.probability(images, None),
                             rtol=1e-5)
  from pgen.core import pixels
  log_p = np.asarray(loaded.log_probability(pixels.to_model_range(images), None))
  np.testing.assert_allclose(np.exp(log_p), model.probability(images, None), atol=1e-4)


def test_a_latent_model_judges_the_generator_that_was_rated_and_no_other(
    generator, smoke_run, tmp_path):
  """Acceptance models on the latent z: for images the feature network does not take
  (another shape, RGB), rejection sampling of the rated generator alone."""
  store = reviews.ReviewStore.open(str(tmp_path / "r.sqlite"), generator)
  latents = np.asarray(generators.latents_for_seeds(generator, range(200)))
  for seed in range(200):
    store.rate(reviews.Rating(seed=seed, label=0, accepted=bool(latents[seed, 0] > 0),
                              reviewer="anna"))
  model, report = acceptance.fit(store, generator, features="latent")
  assert report["features"] == "latent" and report["cv_auc"] > 0.95, report
  loaded = acceptance.AcceptanceModel.load(model.save(str(tmp_path / "acc")))
  assert loaded.features == "latent" and "feature_network" not in loaded.record
  rule = catalog.Acceptance(loaded, 0.5, max_candidates=100)
  catalog.write_catalog(generator, str(tmp_path / "catalog"), 10, acceptance=rule)
  with open(tmp_path / "catalog" / "manifest.csv") as f:
    seeds = [int(row["seed"]) for row in csv.DictReader(f)]
  fresh = np.asarray(generators.latents_for_seeds(generator, range(max(seeds) + 1)))
  images = generator.render(fresh, None)
  assert acceptance.auc(loaded.probability(images, None, fresh), fresh[:, 0] > 0) > 0.95
  np.testing.assert_array_equal(
      np.flatnonzero(loaded.probability(images, None, fresh) >= 0.5), seeds)
  with pytest.raises(ArgumentError, match="judges the latents of the generator that was rated"):
    loaded.check_generator(generators.load(smoke_run, step=3))
  with pytest.raises(ConfigError, match="judges latents"):
    acceptance.reward_of(str(tmp_path / "acc"), generator.image_shape, 0)


def test_images_the_feature_network_cannot_take_get_latent_features():
  assert acceptance.feature_kind("auto", (32, 32, 1)) == "image"
  assert acceptance.feature_kind("auto", (64, 48, 3)) == "latent"
  with pytest.raises(ArgumentError, match="Use --features=latent"):
    acceptance.feature_kind("image", (64, 48, 3))


def test_too_few_ratings_say_how_many_more(generator, tmp_path):
  store = reviews.ReviewStore.open(str(tmp_path / "r.sqlite"), generator)
  for seed in range(30):
    store.rate(reviews.Rating(seed=seed, label=0, accepted=seed < 26, reviewer="anna"))
  with pytest.raises(ArgumentError, match="has 4 rejected ratings.*6 more rejected"):
    acceptance.fit(store, generator)


def test_feedback_fit_and_generate_accept_from_the_command_line(rated, smoke_run, tmp_path):
  store, model, _ = rated
  out = str(tmp_path / "acceptance")
  fitted = _pgen("feedback", "fit", "--reviews", store.path, "--out", out)
  assert fitted.returncode == 0, fitted.stderr[-2000:]
  assert "cross-validated AUC" in fitted.stdout and "calibration" in fitted.stdout
  result = _pgen("generate", "--workdir", smoke_run, "--per_class", "20", "--accept", out,
                 "--min_accept", "0.7", "--out", str(tmp_path / "a"))
  assert result.returncode == 0, result.stderr[-2000:]
  generator = generators.load(smoke_run)
  rule = catalog.Acceptance(acceptance.AcceptanceModel.load(out), 0.7, max_candidates=400)
  catalog.write_catalog(generator, str(tmp_path / "b"), 20, acceptance=rule)
  catalogs = []
  for name in ("a", "b"):
    with open(tmp_path / name / "manifest.csv") as f:
      catalogs.append(list(csv.DictReader(f)))
  assert catalogs[0] == catalogs[1]  # The same seeds give the same catalog.
  rows = catalogs[0]
  assert len(rows) == 20 and all(float(r["accept_probability"]) >= 0.7 for r in rows)
  seeds = np.array([int(r["seed"]) for r in rows])
  images = generator.render(generators.latents_for_seeds(generator, seeds), None)
  np.testing.assert_allclose(model.probability(images, None),
                             [float(r["accept_probability"]) for r in rows], atol=1e-3)
  # The candidates skipped are exactly those below the threshold.
  first = np.arange(seeds.max() + 1)
  candidates = generator.render(generators.latents_for_seeds(generator, first), None)
  np.testing.assert_array_equal(np.flatnonzero(model.probability(candidates, None) >= 0.7),
                                seeds)
  text = Image.open(tmp_path / "a" / rows[0]["file"]).text
  assert text["pgen:accept_probability"] == rows[0]["accept_probability"]


def test_a_class_that_runs_out_of_candidates_says_so(rated, smoke_run, tmp_path):
  _, model, _ = rated
  out = str(tmp_path / "acceptance")
  model.save(out)
  result = _pgen("generate", "--workdir", smoke_run, "--per_class", "30", "--accept", out,
                 "--min_accept", "0.999999", "--max_candidates", "40", "--out",
                 str(tmp_path / "catalog"))
  assert result.returncode == 0, result.stderr[-2000:]
  assert re.search(r"all: \d+ of 30 images reached P\(accept\) >= 0.999999 within 40 "
                   r"candidates", result.stdout), result.stdout


def test_feedback_fit_errors_are_one_message(tmp_path):
  assert "does not exist" in _error(_pgen("feedback", "fit", "--reviews",
                                          str(tmp_path / "none.sqlite"), "--out", str(tmp_path)))
  assert "Name the action" in _error(_pgen("feedback", "--reviews", "x", "--out", "y"))


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_fine_tuning_rewards_acceptance_records_the_model_and_resumes_exactly(
    rated, smoke_run, smoke_config, tmp_path):
  _, model, _ = rated
  model_dir = str(tmp_path / "acceptance")
  model.save(model_dir)
  runs = {}
  for name in ("straight", "resumed", "adversarial_only"):
    runs[name] = str(tmp_path / name)
    shutil.copytree(smoke_run, runs[name])
  smoke_config.total_steps = 10
  adversarial_only = train_and_evaluate(smoke_config, runs["adversarial_only"])
  smoke_config.feedback.acceptance = model_dir
  smoke_config.feedback.weight = 1.0
  reward = acceptance.make_reward(smoke_config)
  straight = train_and_evaluate(smoke_config, runs["straight"], make_reward=reward)
  smoke_config.total_steps = 8
  train_and_evaluate(smoke_config, runs["resumed"], make_reward=reward)
  smoke_config.total_steps = 10
  resumed = train_and_evaluate(smoke_config, runs["resumed"], make_reward=reward)
  for a, b in zip(_leaves(straight), _leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(_leaves(straight.g_params),
                                                      _leaves(adversarial_only.g_params)))
  with open(os.path.join(runs["straight"], "metrics.jsonl")) as f:
    logged = [json.loads(line) for line in f]
  assert any("g_log_accept" in row for row in logged if row.get("step", 0) > 6)
  with open(os.path.join(runs["straight"], "run_record", "start_001.json")) as f:
    record = json.load(f)
  assert record["config"]["feedback"]["acceptance"] == model_dir
  with open(os.path.join(model_dir, acceptance.FILE_NAME), "rb") as f:
    assert record["feedback_acceptance_sha256"] == hashlib.sha256(f.read()).hexdigest()


def test_a_reward_model_for_other_images_is_a_config_error(rated, smoke_config, tmp_path):
  _, model, _ = rated
  model_dir = str(tmp_path / "acceptance")
  model.save(model_dir)
  smoke_config.feedback.acceptance = model_dir
  smoke_config.feedback.weight = 1.0
  smoke_config.model.conditioning = "projection"
  with pytest.raises(ConfigError, match="fitted on ratings of no classes; this run's "
                                        "generator has 10 classes"):
    train_and_evaluate(smoke_config, str(tmp_path / "run"),
                       make_reward=acceptance.make_reward(smoke_config))
