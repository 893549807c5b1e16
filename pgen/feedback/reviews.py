r"""Reviewers' ratings of generated samples, in SQLite: one database per generator.

    store = ReviewStore.open("exports/fmnist/reviews.sqlite", generator)   # creates or checks
    store.rate(Rating(seed=7, label=0, accepted=False, reviewer="anna", reason="smeared"))
    store.undo_last("anna")                 # deletes anna's latest rating and returns it
    store.ratings()                         # every rating, oldest first
    store.write_csv("ratings.csv")

A sample is never stored as an image: it is a seed (its latent, as
`generators.latents_for_seeds` draws it), a label (0 for an unconditional generator) and the
generator that rendered it. The database names that generator by its identity
(`TrainedGenerator.identity`, a SHA-256 of the exact function) and refuses to take ratings
of any other, so ratings of two generators are never mixed. Each rating is its own
transaction; WAL mode lets several reviewers (server threads) write while others read, and a
killed server loses at most the rating it was writing. An existing database is checked when
it is opened (SQLite's quick_check, the tables' columns, one generator row): a damaged or
foreign file is one ArgumentError naming it, never an error on a later call. WAL needs the
database on one host's disk; one on a network filesystem is warned about.

A database is created with the permissions the umask gives, like every file pgen writes, or
readable by its owner only (`private=True`, `python -m pgen review --private`).
"""

import contextlib
import csv
import dataclasses
import datetime
import functools
import json
import os
import sqlite3

from absl import logging

from pgen.errors import ArgumentError

SCHEMA_VERSION = 1
FILE_NAME = "reviews.sqlite"
CSV_FIELDS = ("id", "seed", "label", "class", "accepted", "reason", "reviewer", "generator",
              "created")
BUSY_TIMEOUT_MS = 10_000
MOUNTS = "/proc/mounts"
# Filesystems whose locks do not reach every host: SQLite's WAL mode needs one host's disk.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs",
                       "lustre", "gpfs", "beegfs", "fuse.sshfs", "fuse.glusterfs", "fuse.s3fs"}

_SCHEMA = """
CREATE TABLE generator (
  identity TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  step INTEGER NOT NULL,
  image_shape TEXT NOT NULL,
  class_names TEXT NOT NULL,
  conditional INTEGER NOT NULL,
  latent_dim INTEGER NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE ratings (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  generator TEXT NOT NULL REFERENCES generator(identity),
  seed INTEGER NOT NULL CHECK (seed >= 0),
  label INTEGER NOT NULL CHECK (label >= 0),
  accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
  reason TEXT NOT NULL DEFAULT '',
  reviewer TEXT NOT NULL,
  created TEXT NOT NULL,
  UNIQUE (generator, seed, label, reviewer)
);
CREATE INDEX ratings_by_reviewer ON ratings (reviewer, id);
"""


@dataclasses.dataclass(frozen=True)
class Rating:
  seed: int
  label: int
  accepted: bool
  reviewer: str
  reason: str = ""
  id: int | None = None  # Set by the database.
  created: str = ""


@dataclasses.dataclass(frozen=True)
class GeneratorRecord:
  """The generator a database's ratings judged, as the database records it."""
  identity: str
  source: str
  step: int
  image_shape: tuple
  class_names: tuple
  conditional: bool
  latent_dim: int

  @classmethod
  def of(cls, generator) -> "GeneratorRecord":
    """The record of a generators.TrainedGenerator."""
    return cls(generator.identity, os.path.abspath(generator.source), generator.step,
               tuple(generator.image_shape), tuple(generator.class_names),
               bool(generator.conditional), generator.latent_dim)

  @property
  def num_labels(self) -> int:
    return len(self.class_names) if self.conditional else 1

  def class_name(self, label: int) -> str:
    return self.class_names[label] if self.conditional else "all"


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _connect(path: str) -> sqlite3.Connection:
  connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
  connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
  connection.execute("PRAGMA foreign_keys = ON")
  return connection


def _rating(row) -> Rating:
  id_, seed, label, accepted, reason, reviewer, created = row
  return Rating(seed=seed, label=label, accepted=bool(accepted), reviewer=reviewer,
                reason=reason, id=id_, created=created)


_RATING_COLUMNS = "id, seed, label, accepted, reason, reviewer, created"


class ReviewStore:
  """The ratings database of one generator. Each method opens its own connection, so one
  store serves any number of threads."""

  def __init__(self, path: str, generator: GeneratorRecord):
    self.path, self.generator = path, generator

  @classmethod
  def open(cls, path: str, generator, *, private: bool = False) -> "ReviewStore":
    """The database at `path` for `generator` (a TrainedGenerator or GeneratorRecord),
    created with its schema if absent; an ArgumentError if it holds another generator's
    ratings, is damaged or is not a pgen reviews database. `private`: mode 0600."""
    record = generator if isinstance(generator, GeneratorRecord) else GeneratorRecord.of(
        generator)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _warn_if_on_a_network_filesystem(path)
    if private:  # Before SQLite creates it: its WAL and shared-memory files copy its mode.
      os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
      os.chmod(path, 0o600)
    with contextlib.closing(_connect(path)) as connection:
      try:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
      except sqlite3.DatabaseError as error:
        raise _not_a_database(path, error) from None
      if mode.lower() != "wal":
        raise ArgumentError(f"db={path}: SQLite could not use WAL mode there ({mode}); put "
                            "the database on a local disk.", argument="db")
      connection.execute("BEGIN IMMEDIATE")
      try:
        version = _schema_version(connection, path)
        if version == 0:
          for statement in filter(str.strip, _SCHEMA.split(";")):  # In this transaction
            connection.execute(statement)  # (executescript would commit first).
          connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
          connection.execute(
              "INSERT INTO generator VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              (record.identity, record.source, record.step, json.dumps(record.image_shape),
               json.dumps(record.class_names), int(record.conditional), record.latent_dim,
               _now()))
        else:
          _check_generator(connection, path, record)
        connection.execute("COMMIT")
      except BaseException as error:
        with contextlib.suppress(sqlite3.Error):
          connection.execute("ROLLBACK")
        if isinstance(error, sqlite3.DatabaseError):
          raise _not_a_database(path, error) from None
        raise
    return cls(path, record)

  @classmethod
  def read(cls, path: str) -> "ReviewStore":
    """An existing database, with the generator it records."""
    if not os.path.isfile(path):
      raise ArgumentError(f"reviews={path} does not exist; rate samples first with "
                          "`python -m pgen review`.", argument="reviews")
    with contextlib.closing(_connect(path)) as connection:
      if _schema_version(connection, path) == 0:
        raise ArgumentError(f"reviews={path} holds no ratings yet (no schema); rate samples "
                            "with `python -m pgen review` first.", argument="reviews")
      row = _generator_row(connection, path)
    identity, source, step, shape, names, conditional, latent_dim = row
    return cls(path, GeneratorRecord(identity, source, step, tuple(json.loads(shape)),
                                     tuple(json.loads(names)), bool(conditional), latent_dim))

  def check_label(self, label: int) -> None:
    if not 0 <= label < self.generator.num_labels:
      raise ArgumentError(f"label={label} is not a label of this generator; use 0 .. "
                          f"{self.generator.num_labels - 1}.", argument="label")

  def rate(self, rating: Rating) -> Rating:
    """Stores `rating` (replacing the same reviewer's earlier rating of the same sample);
    returns it as stored."""
    self.check_label(rating.label)
    if rating.seed < 0:
      raise ArgumentError(f"seed={rating.seed} must be >= 0.", argument="seed")
    if not rating.reviewer:
      raise ArgumentError("reviewer must be a non-empty name.", argument="reviewer")
    created = _now()
    with contextlib.closing(_connect(self.path)) as connection:
      row = connection.execute(
          "INSERT INTO ratings (generator, seed, label, accepted, reason, reviewer, created) "
          "VALUES (?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (generator, seed, label, reviewer) DO UPDATE SET "
          "accepted = excluded.accepted, reason = excluded.reason, created = excluded.created "
          f"RETURNING {_RATING_COLUMNS}",
          (self.generator.identity, int(rating.seed), int(rating.label), int(rating.accepted),
           rating.reason, rating.reviewer, created)).fetchone()
    return _rating(row)

  def undo_last(self, reviewer: str) -> Rating | None:
    """Deletes `reviewer`'s latest rating (a re-rating counts from when it was made);
    returns it (None if they have none)."""
    with contextlib.closing(_connect(self.path)) as connection:
      row = connection.execute(
          "DELETE FROM ratings WHERE id = (SELECT id FROM ratings WHERE reviewer = ? "
          "ORDER BY created DESC, id DESC LIMIT 1) "
          f"RETURNING {_RATING_COLUMNS}", (reviewer,)).fetchone()
    return None if row is None else _rating(row)

  def ratings(self, reviewer: str | None = None) -> list[Rating]:
    """The ratings (of `reviewer`, or everyone's), oldest first."""
    where, args = ("WHERE reviewer = ?", (reviewer,)) if reviewer else ("", ())
    with contextlib.closing(_connect(self.path)) as connection:
      rows = connection.execute(f"SELECT {_RATING_COLUMNS} FROM ratings {where} ORDER BY id",
                                args).fetchall()
    return [_rating(row) for row in rows]

  def rated_seeds(self, reviewer: str, label: int) -> set[int]:
    with contextlib.closing(_connect(self.path)) as connection:
      rows = connection.execute("SELECT seed FROM ratings WHERE reviewer = ? AND label = ?",
                                (reviewer, label)).fetchall()
    return {seed for (seed,) in rows}

  def counts(self, reviewer: str | None = None) -> dict:
    """{"rated", "accepted", "rejected", "samples", "reviewers"} (of `reviewer` for the first
    three when given); samples counts distinct (seed, label) pairs rated by anyone."""
    with contextlib.closing(_connect(self.path)) as connection:
      where, args = ("WHERE reviewer = ?", (reviewer,)) if reviewer else ("", ())
      rated, accepted = connection.execute(
          f"SELECT COUNT(*), COALESCE(SUM(accepted), 0) FROM ratings {where}", args).fetchone()
      samples, reviewers = connection.execute(
          "SELECT COUNT(DISTINCT seed || ':' || label), COUNT(DISTINCT reviewer) "
          "FROM ratings").fetchone()
    return {"rated": rated, "accepted": accepted, "rejected": rated - accepted,
            "samples": samples, "reviewers": reviewers}

  def write_csv(self, path_or_file) -> None:
    """Every rating as CSV (CSV_FIELDS), to a path or an open text file; text a spreadsheet
    would run as a formula is escaped (spreadsheet_safe)."""
    with contextlib.ExitStack() as stack:
      out = path_or_file
      if isinstance(path_or_file, str):
        out = stack.enter_context(open(path_or_file, "w", newline=""))
      writer = csv.DictWriter(out, CSV_FIELDS)
      writer.writeheader()
      for rating in self.ratings():
        writer.writerow({"id": rating.id, "seed": rating.seed, "label": rating.label,
                         "class": spreadsheet_safe(self.generator.class_name(rating.label)),
                         "accepted": int(rating.accepted),
                         "reason": spreadsheet_safe(rating.reason),
                         "reviewer": spreadsheet_safe(rating.reviewer),
                         "generator": self.generator.identity, "created": rating.created})


def spreadsheet_safe(text: str) -> str:
  """`text` with a leading ' when it starts as a spreadsheet formula would (=, +, -, @, a tab
  or a carriage return), as OWASP advises against CSV injection: the cell shows the text."""
  return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _not_a_database(path: str, error: sqlite3.DatabaseError) -> ArgumentError:
  return ArgumentError(f"db={path} is not a readable SQLite database ({error}); give a new "
                       "path, or restore the file from a copy.", argument="db")


def _warn_if_on_a_network_filesystem(path: str) -> None:
  """Logs a warning when `path`'s folder is on one of NETWORK_FILESYSTEMS (by MOUNTS)."""
  folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
  try:
    with open(MOUNTS) as f:
      mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
  except OSError:
    return
  inside = [(point, kind) for point, kind in mounts
            if folder == point or folder.startswith(point.rstrip("/") + "/")]
  if inside:
    point, kind = max(inside, key=lambda mount: len(mount[0]))
    if kind in NETWORK_FILESYSTEMS:
      logging.warning("%s is on a %s network filesystem (%s): SQLite's WAL mode needs the "
                      "server and its readers on one host; keep the database on a local "
                      "disk.", path, kind, point)


@functools.cache
def _expected_columns() -> dict[str, list[str]]:
  """{table: its columns} of _SCHEMA, read from a database made with it."""
  with contextlib.closing(sqlite3.connect(":memory:")) as connection:
    connection.executescript(_SCHEMA)
    return {table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            for table in ("generator", "ratings")}


def _schema_version(connection: sqlite3.Connection, path: str) -> int:
  """0 for an empty database; the schema version of an intact pgen reviews database; else
  an ArgumentError (damaged, another program's database, or a newer pgen's)."""
  try:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = {name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0 and not tables:
      return 0
    check = [row[0] for row in connection.execute("PRAGMA quick_check")]
    columns = {table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
               for table in ("generator", "ratings")}
  except sqlite3.DatabaseError as error:
    raise _not_a_database(path, error) from None
  if check != ["ok"]:
    raise ArgumentError(f"db={path} is damaged (SQLite's quick_check: {check[0][:200]}); "
                        "restore it from a copy or give a new path.", argument="db")
  if version > SCHEMA_VERSION:
    raise ArgumentError(f"db={path} has schema version {version}; this pgen reads version "
                        f"{SCHEMA_VERSION}. Upgrade pgen to open it.", argument="db")
  if version != SCHEMA_VERSION or columns != _expected_columns():
    raise ArgumentError(f"db={path} is not a pgen reviews database (tables {sorted(tables)}, "
                        f"schema version {version}); give a new path.", argument="db")
  _generator_row(connection, path)
  return version


def _generator_row(connection: sqlite3.Connection, path: str) -> tuple:
  """The one generator row, with its values' types checked."""
  rows = connection.execute("SELECT identity, source, step, image_shape, class_names, "
                            "conditional, latent_dim FROM generator").fetchall()
  types = (str, str, int, str, str, int, int)
  if len(rows) != 1 or not all(isinstance(v, t) for v, t in zip(rows[0], types, strict=True)):
    raise ArgumentError(f"db={path} should name one generator; its generator table holds "
                        f"{len(rows)} rows or values of the wrong types. Give a new path.",
                        argument="db")
  try:
    json.loads(rows[0][3]), json.loads(rows[0][4])
  except ValueError:
    raise ArgumentError(f"db={path}: the generator's image shape or class names are not "
                        "JSON; give a new path.", argument="db") from None
  return rows[0]


def _check_generator(connection: sqlite3.Connection, path: str, record: GeneratorRecord):
  identity, source, step = _generator_row(connection, path)[:3]
  if identity != record.identity:
    raise ArgumentError(
        f"db={path} holds ratings of another generator ({source}, step {step}, identity "
        f"{identity[:12]}); this one ({record.source}, step {record.step}) is "
        f"{record.identity[:12]}. Ratings of two generators are never mixed: give this one "
        "its own --db.", argument="db")
