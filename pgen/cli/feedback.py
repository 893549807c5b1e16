r"""Learns what reviewers accept from their ratings (`python -m pgen review`'s database):
a model of P(accept | sample) that `generate --accept` filters catalogs with and that
`train --config.feedback.acceptance=DIR` fine-tunes the generator towards.

    python -m pgen feedback fit --reviews exports/fmnist/reviews.sqlite \
        --out exports/fmnist/acceptance [--generator exports/fmnist] [--features latent]

prints the cross-validated AUC (overall and per class) and a calibration table, and writes
DIR/acceptance.json (the model, the ratings it saw, the report). The samples are rendered
again from their seeds by the generator the database names (--generator: where it is now,
if it has moved; it must be the same generator).
"""

from absl import app, flags

TAKES_PATHS = True  # The action: `fit`.
ACTIONS = ("fit",)
flags.DEFINE_string("reviews", None, "The ratings: a reviews.sqlite of `python -m pgen review`.")
flags.DEFINE_string("out", None, "Directory for acceptance.json.")
flags.DEFINE_string("generator", None, "The rated generator's export or workdir, when it is "
                    "no longer where the database says.")
flags.DEFINE_enum("features", "auto", ("auto", "image", "latent"),
                  "What the model judges: image (the Fashion-MNIST classifier's features of "
                  "32x32 grayscale images; also a fine-tuning reward), latent (the sample's "
                  "latent z; any generator, rejection sampling of that generator alone), or "
                  "auto (image where the images allow it).")
flags.mark_flags_as_required(["reviews", "out"])
FLAGS = flags.FLAGS


def main(argv) -> None:
  if list(argv) != ["fit"]:
    raise app.UsageError(f"Name the action: python -m pgen feedback {{{','.join(ACTIONS)}}} "
                         f"(got {' '.join(argv) or 'none'}).")
  from pgen.feedback import acceptance, reviews  # noqa: PLC0415  (loads JAX)
  from pgen.generation import generators
  store = reviews.ReviewStore.read(FLAGS.reviews)
  record = store.generator
  source = FLAGS.generator or record.source
  acceptance.feature_kind(FLAGS.features, record.image_shape)
  is_export = generators.is_export(source)
  generator = generators.load(source, None if is_export else record.step)
  model, report = acceptance.fit(store, generator, FLAGS.features)
  path = model.save(FLAGS.out)
  print(acceptance.format_report(report))
  print(f"Wrote {path}.")
