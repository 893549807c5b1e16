r"""Serves a page where reviewers rate a generator's samples, keep or reject (with a reason),
one at a time or a page of tiles at a time; the ratings go to an SQLite database that
`python -m pgen review` reopens where it left off.

    python -m pgen review --export exports/fmnist --port 8800 --reviewer anna
    python -m pgen review --workdir runs/fmnist [--step N] [--condition label=Dress] \
        [--db ratings/fmnist.sqlite] [--host 0.0.0.0]

Then open http://127.0.0.1:8800. Keys: k or Right keeps, r or Left rejects, u or Backspace
undoes. Each rating is saved as it is made: Ctrl-C or SIGTERM loses nothing. A database
holds the ratings of one generator only (a step of a run, an export): rate another one into
its own --db.
"""

import os
import socket

from absl import app, flags

flags.DEFINE_string("workdir", None, "Directory of a `python -m pgen train` run.")
flags.DEFINE_string("export", None, "Or: a directory written by `python -m pgen export`.")
flags.DEFINE_integer("step", None, "--workdir: checkpoint step (default: the latest).")
flags.DEFINE_string("condition", None, "Conditional generators: review one class's samples "
                    "only, label=NAME_OR_INDEX (e.g. label=Dress).")
flags.DEFINE_string("reviewer", None, "The name the page offers until a reviewer types theirs.")
flags.DEFINE_string("db", None, "The ratings database (default: reviews.sqlite in the "
                    "--export or --workdir directory).")
flags.DEFINE_string("host", "127.0.0.1", "Address to serve on; 0.0.0.0 serves every network "
                    "interface: anyone who reaches it can rate, with any name.")
flags.DEFINE_integer("port", 8800, "Port to serve on (0: any free one, printed at start).")
FLAGS = flags.FLAGS


def _listen(host: str, port: int) -> socket.socket:
  """A socket listening before uvicorn starts: a port in use is one error message (uvicorn
  would log it and exit), port 0's choice is known, and the page can be opened as soon as
  the address is printed."""
  from pgen.errors import ArgumentError  # noqa: PLC0415
  try:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen()  # Connections wait in the backlog until uvicorn accepts them.
  except (OSError, OverflowError) as error:  # OverflowError: a port outside 0 .. 65535.
    reason = getattr(error, "strerror", None) or error
    raise ArgumentError(f"port={port}: cannot serve on {host}:{port} ({reason}); choose "
                        "another --port (0 picks a free one) or --host.",
                        argument="port") from None
  return listener


def main(argv) -> None:
  del argv
  if (FLAGS.workdir is None) == (FLAGS.export is None):
    raise app.UsageError("Give one of --workdir (a training run) or --export (an export).")
  import uvicorn  # noqa: PLC0415

  from pgen.feedback import review_app, reviews
  from pgen.generation import generators  # noqa: PLC0415  (loads JAX)
  source = FLAGS.workdir or FLAGS.export
  generator = generators.load(source, FLAGS.step)
  condition_label = (None if FLAGS.condition is None
                     else review_app.parse_condition(FLAGS.condition, generator))
  listener = _listen(FLAGS.host, FLAGS.port)
  db = FLAGS.db or os.path.join(source, reviews.FILE_NAME)
  store = reviews.ReviewStore.open(db, generator)
  web_app = review_app.create_app(generator, store, condition_label=condition_label,
                                  default_reviewer=FLAGS.reviewer)
  host, port = listener.getsockname()[:2]
  url_host = f"[{host}]" if ":" in host else host
  print(f"Reviewing {generator.source} at http://{url_host}:{port} (ratings in {db})",
        flush=True)
  server = uvicorn.Server(uvicorn.Config(web_app, log_level="warning", access_log=False,
                                         lifespan="off"))
  server.run(sockets=[listener])
