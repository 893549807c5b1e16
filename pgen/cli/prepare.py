r"""Makes a folder (or CSV) of catalog photos into a versioned TFDS dataset, with a report.

    python -m pgen prepare --src photos --name my_catalog --out ~/pgen_data [--labels labels.csv]

Class = first-level subfolder of --src, or the CSV's `label` column (or the column
--label_column names; its other columns become attributes). Writes
OUT/NAME/VERSION/ with report.md, report.json and manifest.json next to the records.
"""

from absl import flags

from pgen.cli import load_tensorflow

flags.DEFINE_string("src", None, "Folder of images; class = first-level subfolder.")
flags.DEFINE_string("name", None, "Name of the new TFDS dataset (data.name to train).")
flags.DEFINE_string("out", None, "The TFDS data_dir to write to (default: TFDS's).")
flags.DEFINE_string("labels", None, "CSV with `file` (relative to --src), optional `label` "
                    "(else the subfolder) and attribute columns (extra labels).")
flags.DEFINE_string("label_column", None, "The --labels CSV column that is the class "
                    "(default: `label`); the other columns become attributes.")
flags.DEFINE_bool("trim", True, "Crop uniform borders (product whitespace).")
flags.DEFINE_bool("dedup", True, "Drop exact and near-exact copies (perceptual hash).")
flags.DEFINE_integer("min_size", 32, "Skip photos whose shorter side, as given (before "
                     "trimming), is smaller.")
flags.DEFINE_integer("max_size", 1024, "Shrink longer sides to this; 0 = keep all sizes.")
flags.DEFINE_enum("encoding", "png", ["png", "jpeg"], "How images are stored.")
flags.DEFINE_string("dataset_version", None, "e.g. 1.0.0 (default: the next one).")
flags.mark_flags_as_required(["src", "name"])
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  load_tensorflow()
  from pgen.data import folder, images, report  # After TensorFlow loads quietly.
  options = images.CleanOptions(trim=FLAGS.trim, min_size=FLAGS.min_size,
                                max_size=FLAGS.max_size, encoding=FLAGS.encoding)
  result = folder.prepare(FLAGS.src, FLAGS.name, out=FLAGS.out, labels_csv=FLAGS.labels,
                          label_column=FLAGS.label_column, options=options, dedup=FLAGS.dedup,
                          version=FLAGS.dataset_version)
  print(report.report_markdown(result))
  print(f"Wrote {result['path']} (report.md, report.json, manifest.json there).")
