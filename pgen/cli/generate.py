r"""Samples a trained generator (a run's checkpoint, or an export) into a PNG grid, an .npz,
a catalog of PNG files per class, or interpolation strips and GIFs. Needs no dataset and
no TensorFlow.

    python -m pgen generate --workdir runs/fmnist --num 64 --out grid.png
    python -m pgen generate --workdir runs/fmnist --num 10000 --out samples.npz
    python -m pgen generate --workdir runs/sngan --num 64 --out bags.png --class Bag
    python -m pgen generate --workdir runs/shop --num 16 --out red_dresses.png \
        --condition label=dress,colour=red          # a run on data.label_keys
    python -m pgen generate --workdir runs/shop --per_class 200 --out reds/ \
        --condition colour=red                      # every category in red
    python -m pgen generate --export exports/fmnist --per_class 1000 --out catalog/ \
        [--postprocess autocontrast,sharpen,upscale=4]
    python -m pgen generate --export exports/fmnist --per_class 500 --out catalog/ \
        --accept exports/fmnist/acceptance --min_accept 0.8   # what reviewers would accept
    python -m pgen generate --export exports/fmnist --interpolate 16 --num 4 --out interp/
    python -m pgen generate --workdir runs/sg2 --num 64 --out grid.png --truncation 0.7
    python -m pgen generate --workdir runs/sg2 --style_mixing 4x6 --out mixing.png
"""

from absl import app, flags

from pgen.cli import define_render_flags, render_options

flags.DEFINE_string("workdir", None, "Directory of a `python -m pgen train` run.")
flags.DEFINE_string("export", None, "Or: a directory written by `python -m pgen export`.")
flags.DEFINE_string("out", None, "Output: .png (a grid; one per class for a conditional run "
                    "without --class), .npz (`images`, uint8 (N, H, W, C); `labels`), or a "
                    "directory (with --per_class or --interpolate).")
flags.DEFINE_integer("num", 64, "How many images (per class for per-class grids); with "
                     "--interpolate, how many latent pairs.")
flags.DEFINE_integer("step", None, "--workdir: checkpoint step (default: the latest).")
flags.DEFINE_integer("seed", 0, "Seed of the latents (catalogs: the first image's seed).")
flags.DEFINE_string("class", None, "Conditional runs: class index or name of every sample.")
flags.DEFINE_string("condition", None, "Conditional runs, instead of --class: KEY=VALUE of "
                    "every sample, label=Dress; runs on combined labels (data.label_keys) "
                    "name each attribute, label=dress,colour=red (names or indices). Grids, "
                    ".npz files and catalogs take several classes: name some of the keys "
                    "(colour=red: every category in red) or several values ('label=dress|"
                    "tshirt').")
flags.DEFINE_integer("per_class", None, "A catalog: this many PNGs per class (per combination "
                     "on combined labels) in --out/<class>/<seed>.png, with manifest.csv and "
                     "contact sheets; of every class, or those --class or --condition select.")
flags.DEFINE_integer("interpolate", None, "Frames per interpolation between --num latent pairs: "
                     "a PNG strip and a GIF each, in --out/.")
flags.DEFINE_string("postprocess", None, "Catalogs and interpolations: e.g. "
                    "autocontrast,sharpen,upscale=4 (pgen/generation/postprocess.py lists the "
                    "steps).")
flags.DEFINE_string("style_mixing", None, "StyleGAN2 workdirs: a ROWSxCOLUMNS grid (e.g. 4x6) "
                    "whose cells take the coarse styles of their row's latent and the fine ones "
                    "of their column's, into the .png --out.")
flags.DEFINE_integer("mix_cutoff", None, "With --style_mixing: how many ws (from the first, "
                     "coarsest layer) come from the row; default half of them.")
flags.DEFINE_string("accept", None, "Catalogs: an acceptance model (`python -m pgen feedback "
                    "fit`'s --out); each class keeps the first seeds whose P(accept) reaches "
                    "--min_accept.")
flags.DEFINE_float("min_accept", 0.8, "With --accept: the least P(accept) a catalog image has.")
flags.DEFINE_integer("max_candidates", None, "With --accept: the most seeds drawn per class "
                     "(default 20 x --per_class); a class that runs out has fewer images, and "
                     "the command says how many.")
define_render_flags()
flags.mark_flags_as_required(["out"])
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  if (FLAGS.workdir is None) == (FLAGS.export is None):
    raise app.UsageError("Give one of --workdir (a training run) or --export (an export).")
  if sum(bool(x) for x in (FLAGS.per_class, FLAGS.interpolate, FLAGS.style_mixing)) > 1:
    raise app.UsageError("--per_class, --interpolate and --style_mixing are different outputs; "
                         "give one.")
  if FLAGS.postprocess and not (FLAGS.per_class or FLAGS.interpolate):
    raise app.UsageError("--postprocess applies to catalogs (--per_class) and interpolations.")
  if FLAGS.mix_cutoff is not None and not FLAGS.style_mixing:
    raise app.UsageError("--mix_cutoff applies to --style_mixing grids.")
  if FLAGS.accept and not FLAGS.per_class:
    raise app.UsageError("--accept filters catalogs: give --per_class N as well.")
  if not 0.0 <= FLAGS.min_accept <= 1.0:
    raise app.UsageError(f"--min_accept={FLAGS.min_accept} must be a probability in [0, 1].")
  from pgen.generation import generate, generators, interpolate, style_mixing  # noqa: PLC0415
  source = FLAGS.workdir or FLAGS.export
  options = render_options()
  if not (FLAGS.per_class or FLAGS.interpolate or FLAGS.style_mixing):
    generate.generate(source, FLAGS.num, FLAGS.out, step=FLAGS.step, seed=FLAGS.seed,
                      class_name=FLAGS["class"].value, condition=FLAGS.condition,
                      options=options)
    return
  generator = generators.load(source, FLAGS.step, options)
  if FLAGS.per_class:
    _write_catalog(generator)
    return
  label = generate.class_label(generator, FLAGS["class"].value, FLAGS.condition)
  if FLAGS.style_mixing:
    path = style_mixing.write_style_mixing(generator, FLAGS.out, FLAGS.style_mixing,
                                           seed=FLAGS.seed, cutoff=FLAGS.mix_cutoff, label=label)
    print(f"Wrote the style-mixing grid {path}.")
  else:
    paths = interpolate.write_interpolations(
        generator, FLAGS.out, FLAGS.num, FLAGS.interpolate, seed=FLAGS.seed, label=label,
        postprocess_spec=FLAGS.postprocess)
    print(f"Wrote {len(paths) // 2} interpolations to {FLAGS.out} (a .png strip and a .gif each).")


def _write_catalog(generator) -> None:
  """--per_class: the catalog of every class, or of those --class or --condition select."""
  from pgen.generation import catalog, generate  # noqa: PLC0415
  selected = generate.selected_labels(generator, FLAGS["class"].value, FLAGS.condition)
  names = None if selected is None else [generator.class_names[i] for i in selected]
  result = catalog.write_catalog(generator, FLAGS.out, FLAGS.per_class, seed=FLAGS.seed,
                                 postprocess_spec=FLAGS.postprocess, class_names=names,
                                 acceptance=_acceptance(generator))
  print(f"Wrote {result['images']} images and {result['manifest']} "
        f"({result['images_per_s']:.0f} images/s).")
  for name, missing in result["shortfall"].items():
    print(f"{name}: {FLAGS.per_class - missing} of {FLAGS.per_class} images reached "
          f"P(accept) >= {FLAGS.min_accept} within {_max_candidates()} candidates; raise "
          "--max_candidates or lower --min_accept for the rest.")


def _max_candidates() -> int:
  return FLAGS.max_candidates or 20 * FLAGS.per_class


def _acceptance(generator):
  """The catalog's rejection sampling of --accept (None without it)."""
  if not FLAGS.accept:
    return None
  from pgen.feedback import acceptance  # noqa: PLC0415
  from pgen.generation import catalog
  model = acceptance.AcceptanceModel.load(FLAGS.accept)
  model.check_generator(generator)
  if _max_candidates() < FLAGS.per_class:
    raise app.UsageError(f"--max_candidates={_max_candidates()} is below --per_class="
                         f"{FLAGS.per_class}.")
  return catalog.Acceptance(model, FLAGS.min_accept, _max_candidates())
