"""What an open explorer page costs the nodes: CPU of the node processes without, then with a page.

Usage (a running network and its explorer)::

    .venv/bin/python tests/support/explorer_cost.py DIR http://127.0.0.1:8700/ [SECONDS]

Sums the user + system CPU seconds of the node processes named in DIR/network.json over
SECONDS (default 30) with no page open, then over SECONDS with the page open in headless
Chromium (selenium), and prints both per second as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from scenarios import localnet as net


def main(directory: str, url: str, seconds: float = 30.0) -> dict[str, float]:
    cons = net.load_consortium(Path(directory))
    procs = [psutil.Process(p) for p in net.running_nodes(cons.dir).values()]

    def cpu() -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in procs)

    def window() -> float:
        a, t = cpu(), time.monotonic()
        time.sleep(seconds)
        return (cpu() - a) / (time.monotonic() - t)

    time.sleep(6)  # an earlier page's watching stops after its 5 s grace period
    idle = window()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        time.sleep(3)
        opened = window()
    finally:
        driver.quit()
    return {
        "nodes": len(procs),
        "cpu_s_per_s_no_page": round(idle, 4),
        "cpu_s_per_s_page_open": round(opened, 4),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(args[0], args[1], *(float(a) for a in args[2:3]))))
