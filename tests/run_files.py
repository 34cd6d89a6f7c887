"""Reading what `python -m tinyprune.run` wrote, for tests that compare two runs."""
import json


def without_seconds(obj):
    """obj with every "seconds" entry removed, at any depth: the numbers, wall times aside."""
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


def results(out) -> dict:
    """{"result.json": ..., "results.json": ...} of the run in folder out, wall times aside."""
    return {name: without_seconds(json.loads((out / name).read_text()))
            for name in ("result.json", "results.json")}
