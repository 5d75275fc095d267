"""The dlt comparator of ``bench/import_bench.py``: one UI CSV export into Postgres with dlt's merge.

Runs in the benchmark-only virtualenv (``bench/setup_dlt_venv.sh``, never the product's ``.venv``),
as a child process of the bench, which reads its peak RSS. It imports nothing from ``audiapro``.

Two paths, both ``write_disposition="merge"`` on the leg's natural key (the CSV columns behind our
leg key: Unique ID, Source Channel, Dest. Channel, Start Time, Last app.), every column text as read:

* ``pandas``: ``pandas.read_csv`` in chunks, each DataFrame yielded to a dlt resource; dlt converts
  them to Arrow and, for Postgres, writes CSV files it loads with ``COPY`` (its default path).
* ``arrow``: ``pyarrow.csv.open_csv`` record batches yielded as Arrow tables, written as parquet and
  loaded through the ADBC Postgres driver (binary ``COPY``): dlt's fastest path here.

The last stdout line is ``RESULT {json}`` with the timed seconds and the rows stored.

Usage (normally started by ``import_bench.py``)::

    bench/.dlt-venv/bin/python bench/dlt_load.py --csv legs.csv --url postgresql://... --path pandas
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from typing import Any

#: The CSV columns of a UI export that identify a leg (what our leg key hashes), as dlt names them.
NATURAL_KEY = ("unique_id", "source_channel", "dest_channel", "start_time", "last_app")
#: Rows per DataFrame / Arrow table handed to dlt.
CHUNK_ROWS = 100_000
#: Arrow's CSV reader block (bytes): about 30,000 rows of an export per record batch.
ARROW_BLOCK_BYTES = 8 << 20
DATASET = "dlt_bench"
TABLE = "cdr_legs"
RESULT_PREFIX = "RESULT "
#: Sent only to a server that trusts the connection (see :func:`with_password`).
PLACEHOLDER_PASSWORD = "unused"


def column_names(path: str) -> list[str]:
    """The export's headers in snake case ("Last app." -> ``last_app``), as the tables get them."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    return [re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") for name in header]


def pandas_chunks(path: str) -> Iterator[Any]:
    """The export as DataFrames of text columns."""
    import pandas as pd

    names = column_names(path)
    chunks = pd.read_csv(
        path, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS, names=names, skiprows=1
    )
    yield from chunks


def arrow_tables(path: str) -> Iterator[Any]:
    """The export as Arrow tables of text columns."""
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    names = column_names(path)
    reader = arrow_csv.open_csv(
        path,
        read_options=arrow_csv.ReadOptions(block_size=ARROW_BLOCK_BYTES, column_names=names, skip_rows=1),
        convert_options=arrow_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def with_password(url: str) -> str:
    """``url`` with a placeholder password when it has none: dlt requires the field, and the bench's
    throwaway cluster trusts loopback connections, so the value is never checked."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is not None or parts.username is None:
        return url
    netloc = parts.netloc.replace(f"{parts.username}@", f"{parts.username}:{PLACEHOLDER_PASSWORD}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def run(path: str, url: str, method: str) -> dict[str, Any]:
    """Load the export with dlt; return the timed seconds and what the table holds."""
    import dlt
    import psycopg2

    credentials = with_password(url.replace("postgresql+psycopg2://", "postgresql://"))
    items = pandas_chunks(path) if method == "pandas" else arrow_tables(path)
    resource = dlt.resource(
        items,
        name=TABLE,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=list(NATURAL_KEY),
    )
    with tempfile.TemporaryDirectory(prefix="dlt-bench-") as workdir:
        pipeline = dlt.pipeline(
            pipeline_name=f"audiapro_bench_{method}",
            pipelines_dir=workdir,
            destination=dlt.destinations.postgres(credentials=credentials),
            dataset_name=DATASET,
        )
        began = time.perf_counter()
        if method == "pandas":
            pipeline.run(resource)
        else:
            pipeline.run(resource, loader_file_format="parquet")
        seconds = time.perf_counter() - began
    with psycopg2.connect(credentials) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DATASET}.{TABLE}")
        (stored,) = cursor.fetchone()
    conn.close()
    return {"seconds": round(seconds, 3), "rows_in_db": stored, "dlt": dlt.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", required=True)
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the (scratch) database")
    parser.add_argument("--path", choices=("pandas", "arrow"), required=True)
    args = parser.parse_args()
    # No telemetry, no prompts: a benchmark run sends nothing anywhere.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    figures = run(args.csv, args.url, args.path)
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
