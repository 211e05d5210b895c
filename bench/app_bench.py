"""Neuron lab responsiveness on a BERT-base-shaped model (random weights, one forward pass per move).

Two measurements:
- AppTest: a slider move to the rerun script's end (no browser);
- Chromium: `streamlit run app.py` on 127.0.0.1, the Neuron lab in headless Chromium, a slider
  moved with the keyboard (one step, from an idle page), timed until the redrawn numbers show the
  new scale. Only the live panel
  (an ``st.fragment``) reruns. The baseline is a whole-page rerun on the same page and model — what
  every slider move cost before the fragment: a neuron typed in the box reruns the sidebar, the
  inputs and the live panel (one forward pass; the 'before' prediction is cached in both cases).

    python bench/app_bench.py [--moves 10] [--model-dir DIR] [--no-browser]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from common import ROOT, bench_parser, bert_base_folder, machine_line

NEURONS = "11:100, 11:200, 10:5"
CHROMIUM = "/usr/bin/chromium"


def apptest_moves(moves: int) -> tuple[float, list[float]]:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "views" / "2_Neuron_lab.py"), default_timeout=300)
    app.session_state["lab_neurons"] = NEURONS
    start = time.perf_counter()
    app.run()
    first = time.perf_counter() - start
    assert not app.exception and not app.error, [e.value for e in app.error]
    times = []
    for move in range(moves):
        start = time.perf_counter()
        app.slider(key="lab_scale_11_100").set_value(round(0.1 * ((move % 29) + 1), 1)).run()
        times.append(time.perf_counter() - start)
        assert not app.exception
    return first, times


def _server(port: int):
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                               "--server.port", str(port), "--server.headless", "true",
                               "--browser.gatherUsageStats", "false"], cwd=ROOT, env=dict(os.environ),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("streamlit did not start")


def browser_moves(moves: int) -> tuple[list[float], list[float]]:
    """(slider move → redrawn numbers, whole-page rerun → redrawn numbers), seconds, in Chromium."""
    from playwright.sync_api import expect, sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _server(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/Neuron_lab", wait_until="networkidle")
            field = page.get_by_role("textbox", name="Neurons (layer:neuron", exact=False)
            field.wait_for(timeout=300_000)
            field.fill(NEURONS)
            field.press("Enter")
            caption = page.get_by_text("after = the model with", exact=False).first
            expect(caption).to_contain_text("L11:100 ×0,", timeout=300_000)
            thumb = page.get_by_role("slider").first

            def shown(text: str) -> None:
                # Checked on every animation frame: expect()'s back-off polling would add up to 0.5 s.
                page.wait_for_function("text => document.body.innerText.includes(text)", arg=text, polling="raf",
                                       timeout=60_000)

            slider_times = []
            for move in range(1, moves + 1):
                page.wait_for_timeout(1000)  # a person looks at the result before the next move: start idle
                thumb.focus()
                start = time.perf_counter()
                thumb.press("ArrowRight")
                shown(f"L11:100 ×{0.1 * move:.1f}".rstrip("0").rstrip(".") + ",")
                slider_times.append(time.perf_counter() - start)
            page_times = []
            for move in range(moves):
                neuron = 101 + move
                page.wait_for_timeout(1000)
                start = time.perf_counter()
                field.fill(NEURONS.replace("11:100", f"11:{neuron}"))
                field.press("Enter")
                shown(f"L11:{neuron} ×0,")
                page_times.append(time.perf_counter() - start)
            browser.close()
        return slider_times, page_times
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    import tempfile
    from pathlib import Path

    parser = bench_parser(__doc__)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true", help="only the AppTest measurement")
    args = parser.parse_args()
    folder = bert_base_folder(args.model_dir or Path(tempfile.mkdtemp()) / "bert-base-random")
    os.environ["BIAS_LAB_MODEL"] = str(folder)
    os.environ.setdefault("BIAS_LAB_HOME", tempfile.mkdtemp())
    from bias_lab.device import resolve_device

    first, apptest = apptest_moves(args.moves)
    print(machine_line(resolve_device(args.device)))
    print(f"model: BERT-base shape, random weights; Neuron lab with 3 neurons; {args.moves} moves each")
    print()
    print("| what | seconds |")
    print("|---|---|")
    print(f"| AppTest: first render (model load, before and after predictions) | {first:.2f} |")
    print(f"| AppTest: slider move → script done, median | {statistics.median(apptest):.3f} |")
    if args.no_browser:
        return
    slider, whole = browser_moves(args.moves)
    print(f"| Chromium: slider move → redrawn numbers (fragment rerun), median | {statistics.median(slider):.3f} |")
    print(f"| Chromium: slider move → redrawn numbers, max | {max(slider):.3f} |")
    print(f"| Chromium baseline: whole-page rerun → redrawn numbers, median | {statistics.median(whole):.3f} |")
    print(f"| ratio whole page / fragment | {statistics.median(whole) / statistics.median(slider):.2f}× |")


if __name__ == "__main__":
    main()
