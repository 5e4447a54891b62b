"""Read the records of an offline wandb run file (run-<id>.wandb) — for tests only.

wandb 0.31 ships no reader for its own offline files (its old `datastore` module is gone), so this reads the
format directly: a 7-byte header (":W&B", magic, version), then LevelDB-log framing (32 KiB blocks; records of
checksum(4) length(2) type(1) + payload; types FULL/FIRST/MIDDLE/LAST) around protobuf `Record` messages.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    out, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            break
        if kind in (FULL, FIRST):
            pending = payload
        else:
            pending += payload
        if kind in (FULL, LAST):
            r = pb.Record()
            r.ParseFromString(pending)
            out.append(r)
    return out


def summarize(path: Path) -> dict:
    """The run id, name, group, config (key -> value), history rows and summary found in a run file."""
    result = {"run": None, "config": {}, "history": [], "summary": {}}
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            result["run"] = {
                "id": r.run.run_id,
                "group": r.run.run_group,
                "job_type": r.run.job_type,
                "tags": list(r.run.tags),
                "name": r.run.display_name,
            }
            if r.run.notes:
                result["run"]["notes"] = r.run.notes
            for item in r.run.config.update:
                result["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in r.config.update:
                result["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            result["history"].append(
                {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
            )
        elif kind == "summary":
            for item in r.summary.update:
                result["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return result
