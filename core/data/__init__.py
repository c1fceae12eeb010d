"""Dataset loading and validation: files, folders, ZIPs and demos in; a split `LabeledData` out.

Every problem a user can fix raises a typed `core.errors.DataError` whose message is one sentence
naming the file, the row (as a spreadsheet shows it: header is row 1) or ZIP entry, and the fix.
Things worth knowing but not fatal (duplicates, leakage, imbalance, truncation, encoding guesses)
become strings in `LabeledData.warnings`. Loading is read-only: nothing is written or extracted.

The modules, by stage, each importing only those listed before it:

- `messages`  how messages name sizes, rows, entries and lists (imports nothing from core.data)
- `limits`    `DataLimits` and the errors for tables that would decode past them
- `archive`   vetting and reading image ZIPs without extracting them
- `demos`     the built-in `demo:NAME` datasets
- `locations` where uploads and saved datasets live under $TUNESCOPE_HOME
- `dataset`   the loaded-dataset record (`LabeledData`, `SPLITS`, `ByteBoundedCache`)
- `read`      a table file's format, bytes and encoding, parsed into rows and columns
- `images`    the one image reader (`decode_image`, `open_image`, `decode_upload`), image path confinement
- `sources`   what a source names (file, folder, saved dataset, upload, demo) and whether it is confined
- `columns`   picking the text, label and split columns; `inspect_columns`
- `examples`  validated inputs and labels from a table, a ZIP or a folder
- `splits`    class checks, subsampling, train/validation/test splits, quality warnings
- `load`      the loaders: `load_dataset`, `load_for_config`, `load_labeled_file`
- `profile`   a loaded dataset summed up for forms and estimates (classes, sizes, typical input size)
- `store`     saved datasets: staging uploads, saving, listing, deleting

May import: `core.errors`, `core.runs` and third-party readers (numpy, pandas, PIL, pyarrow); never
models, train, jobs, explain, cli or the dashboard. Names not re-exported here are internal to the
package.
"""

from __future__ import annotations

from core.data import archive, demos
from core.data.columns import inspect_columns
from core.data.images import decode_image, decode_upload, median_image_side, open_image, read_image_bytes
from core.data.limits import DataLimits
from core.data.load import load_dataset, load_for_config, load_labeled_file
from core.data.profile import dataset_profile
from core.errors import UnknownLabelError

__all__ = ["DataLimits", "UnknownLabelError", "archive", "dataset_profile", "decode_image", "decode_upload", "demos",
           "inspect_columns", "load_dataset", "load_for_config", "load_labeled_file", "median_image_side",
           "open_image", "read_image_bytes"]
