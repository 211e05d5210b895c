"""StereoSet intrasentence speed: the batched scorer (deduplicated inputs, length-sorted padded
batches, LM head at the mask only) against a batch-size-1 loop with the full head (the pattern of
bias-bench), over the 2106 dev examples on a BERT-base-shaped model; identical scores checked.

    python bench/eval_bench.py [--examples 2106] [--device auto] [--model-dir DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import SHARED, bench_parser, load_bench_model, machine_line, timed

from bias_lab.data import load_stereoset
from bias_lab.evaluation import evaluate


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--examples", type=int, default=2106)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "stereoset" / "dev_derived.json")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"StereoSet dev file {args.data} not found: pass --data /path/to/dev.json")

    loaded = load_bench_model(args)
    data = load_stereoset(args.data)
    data.intrasentence = data.intrasentence[: args.examples]
    count = len(data.intrasentence)
    print(machine_line(loaded.device))
    print(f"model: BERT-base shape, random weights; StereoSet intrasentence, {count} examples ({3 * count} sentences)")
    evaluate(loaded, "stereoset", type(data)(data.intrasentence[:20]))  # warm-up
    batched_s, batched = timed(lambda: evaluate(loaded, "stereoset", data))
    naive_s, naive = timed(lambda: evaluate(loaded, "stereoset", data, naive=True))
    difference = float(np.max(np.abs(batched.items["score"] - naive.items["score"]) / naive.items["score"]))
    same_ss = batched.summary == naive.summary
    print()
    print("| scorer | seconds | examples/s |")
    print("|---|---|---|")
    print(f"| batch-size-1 loop, full LM head (bias-bench pattern) | {naive_s:.1f} | {count / naive_s:.1f} |")
    print(f"| batched: deduplicated, sorted by length, head at the mask | {batched_s:.1f} | {count / batched_s:.1f} |")
    print()
    print(f"batched / loop = {naive_s / batched_s:.2f}×; max relative score difference {difference:.1e}; "
          f"SS/LMS/ICAT identical: {same_ss}")
    overall = batched.summary["intrasentence"]["overall"]
    print(f"(random weights) SS {overall['ss']:.2f}  LMS {overall['lms']:.2f}  ICAT {overall['icat']:.2f}")


if __name__ == "__main__":
    main()
