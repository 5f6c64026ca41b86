"""The web monitor in real headless Chromium (Debian's ``chromium``, driven by Playwright):
log in through the link ``engine serve`` prints, watch executions change live, read
history and the dependency graph, answer a message in its form, start a flow from its
page. One server and one browser for the module; a screenshot of each page is kept in
``tests/artifacts/``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import Served, api_client, engine_command, serving, until_status

CHROMIUM = os.environ.get("ENGINE_TEST_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does): browser tests skipped",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
Page = sync_api.Page
expect = sync_api.expect

MONITOR_FLOWS = Path(__file__).parent / "flows" / "monitor"
ARTIFACTS = Path(__file__).parent / "artifacts"
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Only a hung test waits this long; live updates come about once a second.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-browser"), MONITOR_FLOWS) as served:
        yield served


@pytest.fixture(scope="module")
def api(server: Served) -> Iterator[httpx.Client]:
    with api_client(server, "browser") as client:
        yield client


@pytest.fixture(scope="module")
def page(server: Served) -> Iterator[Page]:
    """A Chromium tab logged in through the login link."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.goto(server.login_link)
            expect(tab.locator("h1")).to_have_text("Executions")
            yield tab
        finally:
            browser.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def start(api: httpx.Client, flow: str, inputs: dict[str, Any] | None = None, **extra: Any) -> str:
    started = api.post("/api/executions", json={"flow": flow, "inputs": inputs or {}, **extra})
    assert started.status_code in (200, 202), started.text
    return str(started.json()["id"])


def test_the_login_link_opens_the_monitor_and_works_once(page: Page, server: Served) -> None:
    assert page.url == f"{server.url}/executions"
    with server.client() as other:
        assert other.get(server.login_link).status_code == 401


def test_executions_list_and_page_update_live(page: Page, api: httpx.Client, tmp_path: Path) -> None:
    page.goto(page.url.split("/executions")[0] + "/executions")
    page.evaluate("window.__same_page = true")
    flag = tmp_path / "go"
    execution_id = start(api, "busy", {"path": str(flag)}, name="watched live")
    row = page.locator("#rows tr", has_text=execution_id)
    expect(row.locator(".status")).to_have_text("RUNNING")  # it appeared without a reload
    shot(page, "executions")

    row.locator("a", has_text=execution_id).click()
    expect(page.locator("#status")).to_have_text("RUNNING")
    page.evaluate("window.__same_page = true")
    flag.touch()
    expect(page.locator("#status")).to_have_text("ENDED_SUCCESS")
    expect(page.locator("#log")).to_contain_text("step starts")
    assert page.evaluate("window.__same_page") is True  # updated in place, not reloaded
    shot(page, "execution-ended")


def test_history_graph_and_answering_the_message_in_its_form(page: Page, api: httpx.Client, server: Served) -> None:
    execution_id = start(api, "family")
    page.goto(f"{server.url}/executions/{execution_id}")
    form = page.locator("form.answer")
    expect(form).to_be_visible()  # appears live once the child ended and the message was sent
    child = api.get(f"/api/executions/{execution_id}").json()["children"][0]["id"]
    history = page.locator("#history")
    expect(history).to_contain_text('this.flow("echo", greeting="hello")')  # each event with its source line
    expect(history).to_contain_text("this.message(subject=")
    expect(page.locator("#tree")).to_contain_text(child)
    expect(page.locator("#deps")).to_contain_text(child)
    if shutil.which("dot"):
        graph = page.locator("#graph")
        expect(graph).to_be_visible()
        assert page.evaluate("document.getElementById('graph').naturalWidth") > 0  # the SVG loaded and drew
    shot(page, "execution-waiting")

    form.locator("input[name=count]").fill("many")
    form.locator("button").click()
    expect(page.locator("#error")).to_contain_text("'count' must be an integer")
    assert api.get(f"/api/executions/{execution_id}").json()["status"] == "WAITING"
    shot(page, "message-refused")

    page.goto(f"{server.url}/messages")
    card = page.locator(".message-card", has_text=execution_id)
    shot(page, "messages")
    card.locator("input[name=count]").fill("7")
    card.locator("button").click()
    expect(page).to_have_url(f"{server.url}/executions/{execution_id}")
    expect(page.locator("#status")).to_have_text("ENDED_SUCCESS")
    expect(page.locator("#outputs")).to_contain_text('"count": 7')
    shot(page, "execution")


#: Counts live fragments the page has finished handling: after the monitor's own handler
#: of the response body (a task after its promise settled).
HANDLED = """
const fetched = window.fetch;
window.__handled = 0;
window.fetch = (...args) => fetched(...args).then((response) => {
  const text = response.text.bind(response);
  response.text = () => text().then((body) => { setTimeout(() => { window.__handled += 1; }, 0); return body; });
  return response;
});
"""


def test_an_answer_typed_while_a_live_update_is_on_its_way_is_kept(page: Page, api: httpx.Client, server: Served) -> None:
    execution_id = start(api, "family")
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(storage_state=page.context.storage_state())  # logged in, with a fresh init script
    tab = context.new_page()
    try:
        tab.add_init_script(HANDLED)
        held: list[Any] = []
        tab.route(f"**/executions/{execution_id}/live", lambda route: held.append(route))
        tab.goto(f"{server.url}/executions/{execution_id}")
        for _ in range(600):  # only stops a hung test: an update held while the form is shown
            if held and tab.locator("form.answer").count():
                break
            if held:
                held.pop().continue_()
            tab.wait_for_timeout(50)
        else:
            pytest.fail(f"the answer form of {execution_id} never showed")
        answer = tab.locator("form.answer input[name=count]")
        answer.fill("12")  # typed while that update is on its way
        handled = tab.evaluate("window.__handled")
        held.pop().continue_()
        tab.wait_for_function("(before) => window.__handled > before", arg=handled)
        expect(answer).to_have_value("12")
        tab.unroute(f"**/executions/{execution_id}/live")
        tab.locator("form.answer button").click()
        expect(tab.locator("#status")).to_have_text("ENDED_SUCCESS")
        expect(tab.locator("#outputs")).to_contain_text('"count": 12')
    finally:
        context.close()


def test_start_a_flow_from_its_page(page: Page, api: httpx.Client, server: Served) -> None:
    page.goto(f"{server.url}/flows")
    shot(page, "flows")
    page.locator("a", has_text="echo").first.click()
    expect(page.locator("pre.source")).to_contain_text("def handler(system, this, inputs):")
    page.locator("#start textarea[name=inputs]").fill("{not json")
    page.locator("#start button").click()
    expect(page.locator("#error")).to_contain_text("not valid JSON")
    page.locator("#start textarea[name=inputs]").fill('{"who": "the browser"}')
    page.locator("#start input[name=name]").fill("from the page")
    shot(page, "flow")
    page.locator("#start button").click()
    expect(page.locator("#status")).to_have_text("ENDED_SUCCESS")
    execution_id = page.url.rsplit("/", 1)[1]
    ended = until_status(api, execution_id, "ENDED_SUCCESS")
    assert ended["name"] == "from the page" and ended["output_value"] == {"inputs": {"who": "the browser"}}
    page.goto(f"{server.url}/executions")
    expect(page.locator("#rows")).to_contain_text("from the page")
    shot(page, "executions-all")


def test_untrusted_text_is_shown_as_text_and_never_runs(page: Page, api: httpx.Client, server: Served) -> None:
    execution_id = start(api, "evil", name=EVIL)
    until_status(api, execution_id, "WAITING")
    for path, where in ((f"/executions/{execution_id}", "#log"), ("/executions", "#rows"), ("/messages", "main")):
        page.goto(server.url + path)
        expect(page.locator(where)).to_contain_text(EVIL)
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("img[onerror]").count() == 0 and page.locator("main script").count() == 0
    shot(page, "untrusted")


def test_schedules_webhooks_and_the_drawing_of_a_flow(page: Page, server: Served) -> None:
    for args in (("schedules", "add", "nightly", "--flow", "echo", "--cron", "0 3 * * *"),
                 ("webhooks", "create", "deploy", "--flow", "family", "--url", server.url)):
        done = engine_command(server.db, *args)
        assert done.returncode == 0, done.stderr
    page.goto(f"{server.url}/schedules")
    expect(page.locator("#schedules")).to_contain_text("nightly")
    expect(page.locator("#schedules")).to_contain_text("active")
    shot(page, "schedules")
    page.goto(f"{server.url}/webhooks")
    expect(page.locator("#webhooks")).to_contain_text(f"{server.url}/webhooks/deploy")
    shot(page, "webhooks")
    page.locator("#webhooks a", has_text="family").click()
    expect(page.locator("#calls")).to_contain_text("line 11: flow echo")
    if shutil.which("dot"):
        expect(page.locator("#script-graph")).to_be_visible()
        assert page.evaluate("document.getElementById('script-graph').naturalWidth") > 0  # the SVG loaded and drew
    shot(page, "flow-calls")
