"""Does `latprof search --target-ms T` with default settings return a model near T?

Needs the host's fitted predictor in ``--db`` (``python benchmarks/lut_build.py --db DB``
builds the MnasNet table at 224 and fits it). Three targets, small, medium and large
for the space: the 10th, 50th and 90th percentile of the predicted latency of 512
random architectures. For each, ``latprof search --target-ms T`` runs with every
search setting at its default (as a user types it; ``--samples`` may be lowered to
save time, and is printed), then the three answers (``best.tflite``) are measured by
``latprof measure A B C`` in one run, interleaved round by round with the speed
probe, so each measured figure is at the device's reference speed, the speed the
predictor predicts for. Printed per target: the answer's predicted latency, the
measured latency (reference speed and raw), and measured vs target (goal: within
+-10%).

    python benchmarks/search_defaults.py --db DB [--samples N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from latprof.predict import load_predictor
from latprof.space import get_space
from latprof.store import Store


def latprof(*args: str) -> dict | list:
    """Run the CLI as a user would; its --json document."""
    proc = subprocess.run([sys.executable, "-m", "latprof", *args, "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"latprof {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def targets_ms(db: Path) -> dict[str, float]:
    space = get_space("mnasnet")
    with Store(db) as store:
        predictor = load_predictor("local", "mnasnet", store=store)
    rng = random.Random(0)
    predicted = predictor.predict_many([space.sample(rng) for _ in range(512)])
    return {name: round(float(np.percentile(predicted, q)), 2)
            for name, q in (("small", 10), ("medium", 50), ("large", 90))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="database holding the host's fitted predictor")
    parser.add_argument("--samples", type=int, help="search samples (default: the search's own default)")
    parser.add_argument("--out", type=Path, help="folder for the searches (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="latprof-search-defaults-"))
    targets = targets_ms(args.db)
    print(f"targets (10th/50th/90th percentile of 512 random MnasNet architectures, predicted): {targets}")
    answers = {}
    for name, target in targets.items():
        extra = ["--samples", str(args.samples)] if args.samples else []
        doc = latprof("--db", str(args.db), "search", "--target-ms", str(target), "--out", str(out / name), *extra)
        answers[name] = doc
        print(f"{name}: search with {doc['samples']} samples, reward {doc['reward_mode']} ({doc['reward']}); "
              f"answer predicted {doc['answer']['latency_ms']:.2f} ms")
    paths = [str(out / name / "best.tflite") for name in targets]
    measured = latprof("--db", str(args.db), "measure", *paths)
    records = measured if isinstance(measured, list) else [measured]
    print(f"\n{'target':<8}{'T ms':>8}{'predicted':>11}{'measured@ref':>14}{'raw':>9}{'vs T':>8}{'vs pred':>9}")
    within = 0
    for (name, target), record in zip(targets.items(), records):
        predicted = answers[name]["answer"]["latency_ms"]
        at_ref = record["reference_speed"]["median_ms"]
        raw = record["stats"]["median_ms"]
        vs_target = at_ref / target - 1
        within += abs(vs_target) <= 0.10
        print(f"{name:<8}{target:>8.2f}{predicted:>11.2f}{at_ref:>14.2f}{raw:>9.2f}{vs_target:>+8.1%}"
              f"{at_ref / predicted - 1:>+9.1%}")
    print(f"\n{within}/{len(targets)} answers measured within +-10% of their target (goal: all)")


if __name__ == "__main__":
    main()
