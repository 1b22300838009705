"""Does `latprof search --target-ms T` with default settings return a model near T?

Needs the host's fitted predictor in ``--db`` (``python benchmarks/lut_build.py --db DB``
builds the MnasNet table at 224 and fits it). Three targets, small, medium and large
for the space: the 10th, 50th and 90th percentile of the predicted latency of 512
random architectures. For each, ``latprof search --target-ms T`` runs with every
search setting at its default (as a user types it; ``--samples`` may be lowered to
save time, and is printed). Then the three answers (``best.tflite``) are measured by
one ``latprof measure A B C --reference mobilenet-v2``: round by round, interleaved
with MobileNetV2 and the speed probe. The answer's latency on the predictor's scale
is its measured ratio to MobileNetV2 times MobileNetV2's predicted latency: a ratio
timed in one run holds when this host's speed drifts (by up to 1.5x between runs of
this script), where a figure rescaled by the small probe did not fully (printed
beside it, with the raw median). Goal: within +-10% of T.

    python benchmarks/search_defaults.py --db DB [--samples N] [--out DIR]

An ``--out`` folder that already holds a target's search is measured again, not searched again.
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

from latprof.predictor import load_predictor
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


def search(db: Path, name: str, target: float, out: Path, samples: int | None) -> float:
    """The answer's predicted latency, searching unless ``out`` holds this target's search already."""
    folder = out / name
    if (folder / "best.tflite").exists():
        space = get_space("mnasnet")
        with Store(db) as store:
            predictor = load_predictor("local", "mnasnet", store=store)
        predicted = predictor.predict(space.parse((folder / "best_arch.txt").read_text().strip())).latency_ms
        print(f"{name}: reusing the search in {folder}; answer predicted {predicted:.2f} ms")
        return predicted
    extra = ["--samples", str(samples)] if samples else []
    doc = latprof("--db", str(db), "search", "--target-ms", str(target), "--out", str(folder), *extra)
    print(f"{name}: search with {doc['samples']} samples, reward {doc['reward_mode']} ({doc['reward']}); "
          f"answer predicted {doc['answer']['latency_ms']:.2f} ms")
    return doc["answer"]["latency_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="database holding the host's fitted predictor")
    parser.add_argument("--samples", type=int, help="search samples (default: the search's own default)")
    parser.add_argument("--out", type=Path, help="folder for the searches (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="latprof-search-defaults-"))
    targets = targets_ms(args.db)
    print(f"targets (10th/50th/90th percentile of 512 random MnasNet architectures, predicted): {targets}")
    predicted = {name: search(args.db, name, target, out, args.samples) for name, target in targets.items()}
    reference_ms = latprof("--db", str(args.db), "predict", "mobilenet-v2")["latency_ms"]
    paths = [str(out / name / "best.tflite") for name in targets]
    records = latprof("--db", str(args.db), "measure", *paths, "--reference", "mobilenet-v2")[1:]
    print(f"\nMobileNetV2 predicted {reference_ms:.2f} ms; measured = ratio to MobileNetV2 (interleaved) x that")
    print(f"{'target':<8}{'T ms':>8}{'predicted':>11}{'ratio':>8}{'measured':>10}{'vs T':>8}{'vs pred':>9}"
          f"{'probe-scaled':>14}{'raw':>8}")
    within = 0
    for (name, target), record in zip(targets.items(), records):
        ratio = record["reference_ratio"]["median"]
        measured = ratio * reference_ms
        within += abs(measured / target - 1) <= 0.10
        print(f"{name:<8}{target:>8.2f}{predicted[name]:>11.2f}{ratio:>8.3f}{measured:>10.2f}"
              f"{measured / target - 1:>+8.1%}{measured / predicted[name] - 1:>+9.1%}"
              f"{record['reference_speed']['median_ms']:>14.2f}{record['stats']['median_ms']:>8.2f}")
    print(f"\n{within}/{len(targets)} answers measured within +-10% of their target (goal: all)")


if __name__ == "__main__":
    main()
