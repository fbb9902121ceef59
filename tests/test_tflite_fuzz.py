"""Structure-aware fuzzing of lowp.tflite.load (the cases are made in
tests/tflite_fuzz.py): every mutated model either loads and runs on
``model.random_inputs()``, or is refused with ``lowp.tflite.ModelError``.
Another exception, a crash (segfault, abort) or a hang fails.

Cases run in batches, each in its own Python process, so that a crash or a
hang is caught and names its case. Settings, from the environment:

- ``LOWP_FUZZ_SECONDS``: the total time (default 60).
- ``LOWP_FUZZ_SEED``: the first case seed of every seed model (default 0):
  the same seed and time cover the same cases on a machine of the same speed.
- ``LOWP_FUZZ_WORKERS``: batches running at once (default: 2, or 1 on one core).

A failure prints its seed, its mutations and the command that repeats it:
``python tests/tflite_fuzz.py --model MODEL --seed SEED``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import tflite_fuzz as fz

HELPER = Path(__file__).with_name("tflite_fuzz.py")
#: the longest one case may take before it counts as a hang (seconds)
CASE_TIMEOUT = 20.0
#: the longest one worker process runs cases (seconds)
BATCH_SECONDS = 15.0


@dataclass
class Batch:
    model: str
    first: int
    outcomes: Counter = field(default_factory=Counter)
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    next_seed: int = 0


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def run_batch(model: str, first: int, seconds: float) -> Batch:
    """Cases of ``model`` from seed ``first`` on, for about ``seconds``, in a child."""
    cmd = [sys.executable, str(HELPER), "--worker", "--model", model, "--seed", str(first),
           "--seconds", f"{seconds:.2f}", "--case-timeout", str(CASE_TIMEOUT)]  # fmt: skip
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "LOWP_NUM_THREADS": "1"}
    rc: int | None
    try:
        proc = subprocess.run(
            cmd, capture_output=True, env=env, timeout=seconds + CASE_TIMEOUT + 60
        )
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:  # the watchdog in the child did not fire
        out, err, rc = exc.stdout or b"", exc.stderr or b"", None
    batch = Batch(model, first, next_seed=first)
    running: int | None = None  # a case started and not ended
    for line in out.decode("utf-8", "replace").splitlines():
        record = json.loads(line)
        if "start" in record:
            running = record["start"]
            continue
        running = None
        batch.outcomes[record["outcome"]] += 1
        batch.next_seed = record["end"] + 1
        if record["error"] is not None:
            batch.failures.append((model, record["end"], record["error"]))
    if rc != 0:
        tail = err.decode("utf-8", "replace")[-4000:]
        if rc is None:
            what = "hang (the batch was killed)"
        elif rc < 0:
            what = f"crash (signal {-rc})"
        elif "Timeout" in tail:
            what = f"hang (a case ran over {CASE_TIMEOUT:.0f} s)"
        else:
            what = f"exit status {rc}"
        if running is None:  # died outside a case
            batch.failures.append((model, batch.next_seed, f"worker: {what}\n{tail}"))
            running = batch.next_seed
        else:
            batch.failures.append((model, running, f"{what}\n{tail}"))
        batch.outcomes["crash or hang"] += 1
        batch.next_seed = running + 1
    return batch


def _describe(model: str, seed: int, error: str) -> str:
    try:
        mutations = fz.make_case(model, seed)[1]
    except Exception as exc:  # the case cannot even be made: say so
        mutations = [f"(cannot remake the case: {exc!r})"]
    lines = [f"case {model}:{seed}"] + [f"    {m}" for m in mutations]
    lines.append(f"  repeat: python tests/tflite_fuzz.py --model {model} --seed {seed}")
    lines += [f"  | {line}" for line in error.rstrip().splitlines()[-25:]]
    return "\n".join(lines)


def test_mutated_models_load_or_are_refused():
    total = _env_number("LOWP_FUZZ_SECONDS", 60.0)
    base = int(_env_number("LOWP_FUZZ_SEED", 0))
    workers = int(_env_number("LOWP_FUZZ_WORKERS", min(2, os.cpu_count() or 1)))
    start = time.monotonic()
    deadline = start + total
    next_seed = dict.fromkeys(fz.SEED_MODELS, base)
    first_seed = dict(next_seed)
    outcomes: Counter = Counter()
    failures: list[tuple[str, int, str]] = []
    # batches short enough that every seed model gets at least two turns
    batch_seconds = min(BATCH_SECONDS, max(2.0, total * workers / (2 * len(fz.SEED_MODELS))))
    order = list(fz.SEED_MODELS)  # the model that waited longest goes next
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[Future, str] = {}
        while True:
            left = deadline - time.monotonic()
            while left > 1.0 and len(running) < min(workers, len(order)):
                model = next(m for m in order if m not in running.values())
                order.remove(model)
                order.append(model)
                seconds = min(batch_seconds, left)
                running[pool.submit(run_batch, model, next_seed[model], seconds)] = model
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                model = running.pop(future)
                batch = future.result()
                outcomes.update(batch.outcomes)
                failures += batch.failures
                next_seed[model] = batch.next_seed
    elapsed = time.monotonic() - start
    cases = sum(outcomes.values())
    covered = ", ".join(f"{m} {first_seed[m]}..{next_seed[m] - 1}" for m in fz.SEED_MODELS)
    summary = (
        f"{cases} cases in {elapsed:.1f} s ({cases / max(elapsed, 1e-9):.0f}/s, {workers} "
        f"workers): {dict(outcomes)}; seeds {covered}"
    )
    print(summary)
    assert cases > 0, summary
    # a few at a time keep the report readable; the rest only as seeds
    shown = "\n\n".join(_describe(*f) for f in failures[:8])
    more = ", ".join(f"{m}:{s}" for m, s, _ in failures[8:])
    if failures:
        pytest.fail(f"{len(failures)} failing case(s); {summary}\n\n{shown}\n{more}", pytrace=False)
