"""Neuron lab responsiveness: the time from a slider move to the redrawn page, measured with
Streamlit's AppTest on a BERT-base-shaped model (one forward pass per move, no re-attribution).

    python bench/app_bench.py [--moves 10] [--model-dir DIR]
"""

from __future__ import annotations

import os
import statistics
import time

from common import ROOT, bench_parser, bert_base_folder, machine_line


def main() -> None:
    import tempfile
    from pathlib import Path

    parser = bench_parser(__doc__)
    parser.add_argument("--moves", type=int, default=10)
    args = parser.parse_args()
    folder = bert_base_folder(args.model_dir or Path(tempfile.mkdtemp()) / "bert-base-random")
    os.environ["BIAS_LAB_MODEL"] = str(folder)
    from streamlit.testing.v1 import AppTest

    from bias_lab.device import resolve_device

    app = AppTest.from_file(str(ROOT / "pages" / "2_Neuron_lab.py"), default_timeout=300)
    app.session_state["lab_neurons"] = "11:100, 11:200, 10:5"
    start = time.perf_counter()
    app.run()
    first = time.perf_counter() - start
    assert not app.exception and not app.error, [e.value for e in app.error]
    times = []
    for move in range(args.moves):
        value = 0.1 * ((move % 29) + 1)
        start = time.perf_counter()
        app.slider(key="lab_scale_11_100").set_value(round(value, 1)).run()
        times.append(time.perf_counter() - start)
        assert not app.exception
    print(machine_line(resolve_device("cpu")))
    print(f"model: BERT-base shape, random weights; Neuron lab with 3 neurons; {args.moves} slider moves")
    print()
    print("| what | seconds |")
    print("|---|---|")
    print(f"| first render (model load, before and after predictions) | {first:.2f} |")
    print(f"| slider move → redrawn page, median | {statistics.median(times):.3f} |")
    print(f"| slider move → redrawn page, max | {max(times):.3f} |")


if __name__ == "__main__":
    main()
