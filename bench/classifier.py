"""Time per prompt of the auto-router's local classifier, and of scoring every
seeded profile for it (the router's work besides building candidates).

    .venv/bin/python bench/classifier.py [--rounds 200]

Each labelled prompt of tests/router_corpus.py is classified `rounds` times;
the median and 99th percentile over all timings are printed in microseconds,
with the classifier's agreement with the labels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config_store.catalogue import DEMO_MODELS
from config_store.profiles import DEMO_PROFILES
from config_store.router_config import RouterConfig
from gateway.autoroute.classifier import classify
from gateway.autoroute.request import read_request
from gateway.autoroute.scoring import score
from tests.router_corpus import CORPUS, HELD_OUT

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    config = RouterConfig()
    models = {m.model_id: m for m in DEMO_MODELS}
    prompts = []
    for label, text, image in CORPUS + HELD_OUT:
        content = [{"type": "text", "text": text}, IMAGE] if image else text
        prompts.append((label, [{"role": "user", "content": content}]))
    classify_us: list[float] = []
    score_us: list[float] = []
    agreed = 0
    for label, messages in prompts:
        request = read_request({}, messages)
        agreed += classify(request, config).category == label
        for _ in range(args.rounds):
            start = time.perf_counter()
            request = read_request({}, messages)
            found = classify(request, config)
            middle = time.perf_counter()
            for profile in DEMO_PROFILES:
                score(models[profile.model_id], profile, found, config, "balanced", sticky=False)
            end = time.perf_counter()
            classify_us.append((middle - start) * 1e6)
            score_us.append((end - middle) * 1e6)
    print(f"prompts: {len(prompts)}, timings: {len(classify_us)}")
    print(f"agreement with labels: {agreed}/{len(prompts)} ({100 * agreed / len(prompts):.1f}%)")
    for name, values in (
        ("classify", classify_us),
        (f"score {len(DEMO_PROFILES)} profiles", score_us),
    ):
        print(
            f"{name}: median {statistics.median(values):.1f} us, "
            f"p99 {percentile(values, 0.99):.1f} us"
        )


if __name__ == "__main__":
    main()
