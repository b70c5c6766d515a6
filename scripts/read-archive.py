#!/usr/bin/env python3
"""Reads the analytics archive kept in a local folder (a store's `storage.url`,
file:///var/tmp/spruce-objects by default) with pyarrow and with DuckDB, and prints as JSON
what each found: rows, distinct event ids, event types and days, and how many payloads hold
an "@" (an email would). The archive's layout is analytics/events/dt=YYYY-MM-DD/part-*.parquet.

    python3 -m pip install pyarrow duckdb
    scripts/read-archive.py /var/tmp/spruce-objects
"""

import json
import pathlib
import sys

import duckdb
import pyarrow.dataset as ds


def read(folder):
    root = pathlib.Path(folder) / "analytics" / "events"
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    ids = table.column("event_id").to_pylist()
    payloads = table.column("payload").to_pylist()
    found = {
        "pyarrow": {
            "rows": table.num_rows,
            "distinct_event_ids": len(set(ids)),
            "types": sorted(set(table.column("type").to_pylist())),
            "days": sorted({str(day) for day in table.column("dt").to_pylist()}),
            "payloads_with_at_sign": sum("@" in payload for payload in payloads),
        }
    }
    pattern = str(root / "*" / "*.parquet")
    rows, distinct = duckdb.connect().execute(
        "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?, hive_partitioning = true)",
        [pattern],
    ).fetchone()
    found["duckdb"] = {"rows": rows, "distinct_event_ids": distinct}
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: read-archive.py FOLDER")
    print(json.dumps(read(sys.argv[1])))
