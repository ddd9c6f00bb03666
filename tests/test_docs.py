"""`/docs` works on a network that reaches nothing but cardcore: Swagger UI's files are served by
cardcore itself, and a real browser renders the operations without a request leaving the host."""

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient

# Debian's Chromium; Playwright's own browser download is neither needed nor possible offline.
CHROMIUM = os.environ.get("CARDCORE_TEST_CHROMIUM", "/usr/bin/chromium")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


async def test_docs_page_loads_only_cardcore_assets(client: AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert ABSOLUTE_URL.findall(html) == [], "the page must name no other host"

    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    assert {urlsplit(asset).path.rsplit("/", 1)[-1] for asset in assets} == {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "favicon-32x32.png",
    }
    types = {}
    for asset in assets:
        served = await client.get(urljoin("http://t/docs", asset))
        assert served.status_code == 200, asset
        types[asset.rsplit(".", 1)[-1]] = served.headers["content-type"]
        if asset.endswith(".css"):
            # A stylesheet pulls fonts and images by url(); Swagger UI's are inline data: URLs.
            urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", served.text)
            assert [u for u in urls if not u.startswith("data:")] == []
        if asset.endswith(".js"):
            # The bundle is what renders the page; the browser test below proves that it
            # fetches nothing from elsewhere (it contains spec URLs as identifiers only).
            assert "SwaggerUIBundle" in served.text
    assert types["js"].startswith(("text/javascript", "application/javascript"))
    assert types["css"].startswith("text/css")
    assert types["png"] == "image/png"

    # Only what the page needs: the dist's demo index.html would fetch an API from the internet.
    assert (await client.get("/docs/swagger-ui/index.html")).status_code == 404
    assert (await client.get("/docs/swagger-ui/..%2F__init__.py")).status_code == 404
    # FastAPI's ReDoc page loads its script and fonts from CDNs: not served.
    assert (await client.get("/redoc")).status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The test app on a real loopback port, for a real browser."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.slow  # a Chromium process
async def test_docs_render_operations_in_a_real_browser_offline(
    served: str, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM}: run `make test` as root (it installs "
            "it), or `apt-get install chromium`, or set CARDCORE_TEST_CHROMIUM to a Chromium."
        )
    from playwright.async_api import Route, async_playwright

    left_the_host: list[str] = []
    page_errors: list[str] = []

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            left_the_host.append(route.request.url)
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",  # tests run as root
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.route("**/*", only_loopback)
            page = await context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            await page.goto(f"{served}/docs")
            ping = page.locator('.opblock-summary-path[data-path="/v1/ping"]')
            await ping.wait_for(state="visible", timeout=60_000)
            assert await page.locator(".info .title").first.inner_text() != ""
            assert await page.locator(".opblock").count() > 50  # every operation, not just one
            await ping.scroll_into_view_if_needed()
            await page.screenshot(path=str(tmp_path / "docs.png"))
        finally:
            await browser.close()

    assert left_the_host == []
    assert page_errors == []
