"""The explorer in a real browser: Debian's Chromium, headless, driven by selenium.

A small real network (Shanghai, Hangzhou ×2, Hefei: four node processes) and the
explorer (``creditchain explorer``, a process of its own) are started; the page is
opened and everything is asserted through the DOM: the map places every city and node;
a real query draws its home → holder flows, counts the city pairs and lists the
report; the report page lists each verification check of a saved bundle and flags a
tampered one at the check that fails; a node that rewrites its history (the rogue
step of ``scenarios/files/rogue-node.yaml``) shows as an alarm with its evidence.

Screenshots go to ``test-artifacts/explorer/`` (``EXPLORER_ARTIFACTS`` overrides).
Without Chromium and chromedriver (``apt-get install chromium chromium-driver``) or
selenium, every test here is skipped with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import canonical_bytes
from scenarios import localnet as net
from scenarios.explorer.feeds import flow_outcome

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - the test extra installs it
    webdriver = None

if webdriver is None:
    pytest.skip("selenium is not installed (pip install -e '.[test]')", allow_module_level=True)
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "no Chromium or chromedriver on PATH (apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EXPLORER_ARTIFACTS", ROOT / "test-artifacts" / "explorer"))
_CITY = "  - {{code: {}, name: {}, name_zh: {}, admin_code: '{}', nodes: {}, share: {}, lat: {}, lon: {}}}"
TOPOLOGY = "\n".join(
    ["name: explorer-lab", "algorithm: sha256", "institutions: 6", "cities:"]
    + [
        _CITY.format(*c)
        for c in (
            ("sh", "Shanghai", "上海", "310000", 1, 0.4, 31.23, 121.47),
            ("hz", "Hangzhou", "杭州", "330100", 2, 0.3, 30.27, 120.16),
            ("hf", "Hefei", "合肥", "340100", 1, 0.3, 31.82, 117.23),
        )
    ]
)
ENTERPRISES = 400
WAIT_S = 60.0


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except WebDriverException:
            last = None
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[net.Consortium]:
    work = tmp_path_factory.mktemp("explorer-e2e")
    topology = work / "topology.yaml"
    topology.write_text(TOPOLOGY, "utf-8")
    directory = work / "cc"
    net.init_consortium(directory, str(topology), base_port=net.find_free_base_port(4))
    try:
        result = net.up(directory, enterprises=ENTERPRISES, seed=7, progress=False, timeout_s=120)
        yield result.cons
    finally:
        net.down(directory)


@pytest.fixture(scope="module")
def explorer(network: net.Consortium) -> Iterator[str]:
    port = net.find_free_base_port(1, start=32100, end=33000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "explorer", "--dir", str(network.dir)]
        + ["--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    threading.Thread(target=lambda: [lines.put(x) for x in out], daemon=True).start()
    try:
        first = lines.get(timeout=60)
        assert first.startswith("explorer: http://127.0.0.1:"), first
        yield first.split()[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


@pytest.fixture(scope="module")
def browser(explorer: str) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,800")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(explorer)
        yield driver
    finally:
        driver.quit()


def live(browser: Any, cons: net.Consortium) -> None:
    """Until the page is on the map with every node's event feed subscribed."""
    if browser.execute_script("return document.body.dataset.view") != "map":
        browser.execute_script("location.hash = '#map'")
    n = len(cons.node_ids)
    wait_for(
        f"all {n} event feeds",
        lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-feeds-on") == str(n),
    )


def test_the_map_shows_every_city_and_node(network, browser):
    live(browser, network)
    for city in network.topology.cities:
        group = browser.find_element(By.CSS_SELECTOR, f'g.city[data-city="{city.code}"]')
        assert city.name in group.text
        for node_id in city.node_ids:
            node = group.find_element(By.CSS_SELECTOR, f'g.node[data-node="{node_id}"]')
            wait_for(f"{node_id} up", lambda node=node: node.get_attribute("data-state") == "up")
            assert int(node.get_attribute("data-height") or 0) >= 1
    rows = browser.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")
    assert [r.get_attribute("data-node") for r in rows] == list(network.node_ids)
    assert all("up" in r.text for r in rows)
    screenshot(browser, "map-1280x800")

    # Chinese city names, then back.
    browser.find_element(By.ID, "lang").click()
    for city in network.topology.cities:
        label = browser.find_element(By.CSS_SELECTOR, f'text[data-city-label="{city.code}"]')
        assert label.text == city.name_zh
    browser.find_element(By.ID, "lang").click()
    assert browser.find_element(By.CSS_SELECTOR, 'text[data-city-label="hz"]').text == "Hangzhou"

    # A phone-sized viewport: nothing wider than the screen, the map still drawn.
    browser.set_window_size(390, 844)
    try:
        wait_for(
            "the page to fit a phone's width",
            lambda: browser.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1"
            ),
        )
        svg = browser.find_element(By.ID, "map")
        assert 0 < svg.size["width"] <= 390
        screenshot(browser, "map-phone-390x844")
    finally:
        browser.set_window_size(1280, 800)


def _enterprise(cons: net.Consortium) -> tuple[net.EnterpriseSample, net.Institution]:
    """An enterprise held in two cities or more, and a bank of another city."""
    for sample in net.sample_enterprises(cons, None, limit=20, min_cities=2):
        for inst in cons.institutions:
            if inst.city != sample.city and "post_loan" in inst.purposes:
                return sample, inst
    raise AssertionError("the seeded data has no enterprise held in two cities")


def test_a_query_draws_its_flow_and_counts_city_pairs(network, browser):
    live(browser, network)
    sample, inst = _enterprise(network)
    res = net.query_report(network, inst.institution_id, sample.uscc, "post_loan")
    report = res.bundle["report"]
    qid = report["query_id"]
    row = wait_for(
        "the report in the table",
        lambda: browser.find_elements(By.CSS_SELECTOR, f'#recent tr[data-query="{qid}"]'),
    )[0]
    assert inst.institution_id in row.text and sample.uscc in row.text and "post_loan" in row.text
    assert row.get_attribute("data-outcome") == ("partial" if report["partial"] else "complete")
    assert " ms" in row.text  # its latency

    home = report["home_node"]
    expected = {h["node_id"]: "answered" for h in report["holders"] if h["node_id"] != home}
    expected |= {m["node_id"]: flow_outcome(m["reason"]) for m in report["missing"]}
    assert expected, "the report should cross cities"
    flows = browser.find_elements(By.CSS_SELECTOR, f'#flows path.flow[data-query="{qid}"]')
    assert {f.get_attribute("data-to"): f.get_attribute("data-outcome") for f in flows} == expected
    assert {f.get_attribute("data-from") for f in flows} == {home}

    home_city = network.node(home).city
    for holder, outcome in expected.items():
        pair = browser.find_element(
            By.CSS_SELECTOR, f'#pairs tr[data-pair="{home_city}>{network.node(holder).city}"]'
        )
        cells = pair.find_elements(By.TAG_NAME, "td")
        column = {"answered": 2, "missing": 3, "refused": 4}[outcome]
        assert int(cells[column].text) >= 1
    screenshot(browser, "query-flow")


def _forged(bundle: dict[str, Any], cons: net.Consortium) -> tuple[dict[str, Any], str]:
    """The bundle with one holder's record body edited, re-signed by the home node's own key."""
    forged = json.loads(json.dumps(bundle))
    report = forged["report"]
    section = next(h for h in report["holders"] if h["records"])
    section["records"][0]["body"] = {"edited": True}
    key = cons.node_key(report["home_node"])
    forged["signature"] = base64.b64encode(key.sign(canonical_bytes(report))).decode()
    return forged, f"{section['node_id']}: record 0"


def test_the_report_page_lists_each_check_and_flags_a_tampered_bundle(network, browser, tmp_path):
    sample, inst = _enterprise(network)
    res = net.query_report(network, inst.institution_id, sample.uscc, "post_loan")
    browser.execute_script("location.hash = '#reports'")
    name = res.path.name
    button = wait_for(
        "the saved bundle in the list",
        lambda: browser.find_elements(
            By.CSS_SELECTOR, f'#saved tr[data-bundle="{name}"] button.verify-btn'
        ),
    )[0]
    button.click()
    box = browser.find_element(By.ID, "verification")
    wait_for("the verification", lambda: box.get_attribute("data-name") == name)
    assert box.get_attribute("data-valid") == "true"
    steps = browser.find_elements(By.CSS_SELECTOR, "#steps li.step")
    names = [s.get_attribute("data-step") for s in steps]
    assert all(s.get_attribute("data-ok") == "true" for s in steps)
    assert names[:2] == ["bundle structure", "home node's signature"]
    assert "authorization: inclusion" in names and "home receipt" in names
    for h in res.bundle["report"]["holders"]:
        assert f"{h['node_id']}: checkpoint" in names
        for i in range(len(h["records"])):
            assert f"{h['node_id']}: record {i}" in names
    screenshot(browser, "report-valid")

    forged, failing = _forged(res.bundle, network)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(forged), "utf-8")
    browser.find_element(By.ID, "upload").send_keys(str(path))
    wait_for("the tampered bundle's verdict", lambda: box.get_attribute("data-name") == path.name)
    assert box.get_attribute("data-valid") == "false"
    failed = browser.find_elements(By.CSS_SELECTOR, "#steps li.step.fail")
    assert [f.get_attribute("data-step") for f in failed] == [failing]
    assert "commitment" in failed[0].text
    assert browser.find_element(By.ID, "not-reached").is_displayed()
    screenshot(browser, "report-tampered")

    # Not JSON at all: a clear message on the page, no verdict.
    junk = tmp_path / "junk.json"
    junk.write_text("not a bundle", "utf-8")
    browser.find_element(By.ID, "upload").send_keys(str(junk))
    error = browser.find_element(By.ID, "reports-error")
    wait_for("the error message", error.is_displayed)
    assert "not JSON" in error.text


def test_a_rogue_node_raises_an_alarm_with_evidence(network, browser):
    from scenarios.scenario.rogue import rewrite_history
    from scenarios.scenario.targets import LocalTarget

    live(browser, network)
    rogue = "hf-1"
    record_id = f"{rogue}:explorer-e2e:penalty"
    sample = net.sample_enterprises(network, "hf", limit=1, min_cities=1)[0]
    with net.operator_client(network, rogue) as client:
        status, body = client.call(
            rogue,
            "POST",
            "/v1/ingest",
            {
                "records": [
                    {
                        "uscc": sample.uscc,
                        "record_type": "admin_penalty",
                        "record_id": record_id,
                        "source": "hf-amr",
                        "observed_at": "2021-03-01T09:00:00Z",
                        "body": {"decision_no": "E2E-9", "amount_minor": 900_000},
                    }
                ]
            },
        )
    assert status == 202, body
    net.wait_mirrored(network, timeout_s=60)
    LocalTarget(network, 60.0).rewrite(
        rogue,
        lambda path: rewrite_history(
            network, rogue, {record_id: {"amount_minor": 0}}, set(), None, path=path
        ),
    )
    browser.execute_script("location.hash = '#alarms'")
    alarm = wait_for(
        "an alarm against the rogue node",
        lambda: browser.find_elements(
            By.CSS_SELECTOR, f'#alarm-list li.alarm[data-peer="{rogue}"]'
        ),
        timeout_s=120,
    )[0]
    assert int(browser.find_element(By.ID, "alarm-count").text) >= 1
    alarm.find_element(By.CSS_SELECTOR, "button.evidence-btn").click()
    evidence = wait_for(
        "the alarm's evidence", lambda: alarm.find_elements(By.CSS_SELECTOR, ".evidence pre")
    )
    assert any(rogue in e.text for e in evidence)  # its signed checkpoints
    screenshot(browser, "alarm")
    # The operator resolves it, after confirming.
    alarm.find_element(By.CSS_SELECTOR, "button.resolve-btn").click()
    dialog = browser.switch_to.alert
    assert rogue in dialog.text
    dialog.accept()
    body = browser.find_element(By.TAG_NAME, "body")
    said = wait_for(
        "the resolve's answer", lambda: body.get_attribute("data-last-resolve"), timeout_s=60
    )
    assert "resolved" in said, said
    # On the map the node that raised it is marked.
    at = alarm.get_attribute("data-node")
    browser.execute_script("location.hash = '#map'")
    wait_for(
        f"{at} marked with an alarm",
        lambda: (
            browser.find_element(By.CSS_SELECTOR, f'g.node[data-node="{at}"]').get_attribute(
                "data-state"
            )
            == "alarm"
        ),
    )
    screenshot(browser, "alarm-map")
