r"""Serves a page where reviewers rate a generator's samples, keep or reject (with a reason),
one at a time or a page of tiles at a time; the ratings go to an SQLite database that
`python -m pgen review` reopens where it left off.

    python -m pgen review --export exports/fmnist --port 8800 --reviewer anna
    python -m pgen review --workdir runs/fmnist [--step N] [--condition label=Dress] \
        [--db ratings/fmnist.sqlite] [--host 0.0.0.0]

Then open the URL it prints (http://127.0.0.1:8800/?token=...): every request needs that
token (kept in a cookie after the first visit; `--token` or $PGEN_REVIEW_TOKEN fixes it
across restarts), and the server answers only to its own address and `--allowed_hosts`.
docs/feedback.md says how to serve a team. Keys: k or Right keeps, r or Left rejects, u or Backspace
undoes. Each rating is saved as it is made: Ctrl-C or SIGTERM loses nothing. A database
holds the ratings of one generator only (a step of a run, an export): rate another one into
its own --db.
"""

import os
import socket

from absl import app, flags

TOKEN_VARIABLE = "PGEN_REVIEW_TOKEN"

flags.DEFINE_string("workdir", None, "Directory of a `python -m pgen train` run.")
flags.DEFINE_string("export", None, "Or: a directory written by `python -m pgen export`.")
flags.DEFINE_integer("step", None, "--workdir: checkpoint step (default: the latest).")
flags.DEFINE_string("condition", None, "Conditional generators: review one class's samples "
                    "only, label=NAME_OR_INDEX (e.g. label=Dress).")
flags.DEFINE_string("reviewer", None, "The name the page offers until a reviewer types theirs.")
flags.DEFINE_string("db", None, "The ratings database (default: reviews.sqlite in the "
                    "--export or --workdir directory).")
flags.DEFINE_string("host", "127.0.0.1", "Address to serve on; 0.0.0.0 serves every network "
                    "interface (give the names reviewers use in --allowed_hosts).")
flags.DEFINE_list("allowed_hosts", [], "Host names the server answers to besides its address "
                  "(e.g. review.shop.example behind a proxy); * for any.")
flags.DEFINE_string("token", None, "The secret every request needs (default: "
                    f"${TOKEN_VARIABLE}, else a new random one, printed in the URL).")
flags.DEFINE_bool("private", False, "Make the ratings database readable by its owner only "
                  "(mode 0600) instead of as the umask allows.")
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

  from pgen.feedback import access, review_app, reviews
  from pgen.generation import generators  # noqa: PLC0415  (loads JAX)
  given = FLAGS.token or os.environ.get(TOKEN_VARIABLE)
  token = access.new_token() if given is None else access.check_token(given)
  source = FLAGS.workdir or FLAGS.export
  generator = generators.load(source, FLAGS.step)
  condition_label = (None if FLAGS.condition is None
                     else review_app.parse_condition(FLAGS.condition, generator))
  listener = _listen(FLAGS.host, FLAGS.port)
  db = FLAGS.db or os.path.join(source, reviews.FILE_NAME)
  store = reviews.ReviewStore.open(db, generator, private=FLAGS.private)
  web_app = review_app.create_app(
      generator, store, token=token,
      allowed_hosts=access.hosts_for(FLAGS.host, FLAGS.allowed_hosts),
      condition_label=condition_label, default_reviewer=FLAGS.reviewer)
  host, port = listener.getsockname()[:2]
  url_host = f"[{host}]" if ":" in host else host
  print(f"Reviewing {generator.source} at http://{url_host}:{port}/?token={token} (ratings "
        f"in {db})", flush=True)
  server = uvicorn.Server(uvicorn.Config(web_app, log_level="warning", access_log=False,
                                         lifespan="off"))
  server.run(sockets=[listener])
