"""The web console at ``/`` driven in a real browser: Debian's chromium through Playwright.

A live server holds a repo with a uint8blk and a labelmap volume at three versions
(a locked root, an edited child, a branch) and a second, empty repo. The tests pick
the repo, read the DAG picture, move and zoom the slice, click a label, compare two
versions and take the neuroglancer link. Screenshots go to ``tests/artifacts/``
(or ``$CAS_DVID_TEST_ARTIFACTS``).

CI installs chromium (.ci/run), so a missing browser fails here; on a dev machine
without one, ``CAS_DVID_SKIP_BROWSER=1`` skips instead.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these chromium's own connections are refused on a closed network
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("CAS_DVID_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
SHAPE = (64, 128, 128)  # z, y, x
TIMEOUT_MS = 15_000


def browser_or_skip() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CAS_DVID_SKIP_BROWSER"):
            pytest.skip(f"{CHROMIUM} is missing and CAS_DVID_SKIP_BROWSER is set")
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does)")


def grey_volume(edited: bool) -> np.ndarray:
    z, y, x = np.indices(SHAPE)
    grey = ((2 * x + 3 * y + 5 * z) % 200 + 30).astype(np.uint8)
    if edited:
        grey[:, :64, :64] = 255 - grey[:, :64, :64]
    return grey


def supervoxels() -> np.ndarray:
    z, y, x = np.indices(SHAPE)
    return (1 + x // 32 + 4 * (y // 32) + 16 * (z // 32)).astype(np.uint64)


@dataclass
class Fixture:
    srv: LiveServer
    root: str
    child: str
    branch: str
    commit: str


def post(srv: LiveServer, path: str, body: bytes = b"{}") -> Any:
    return srv.post(path, body)


@pytest.fixture(scope="module")
def live() -> Iterator[Fixture]:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        post(srv, "/api/repos", b'{"alias":"empty","description":"nothing here"}')
        root = post(srv, "/api/repos", b'{"alias":"em","description":"console test"}')["root"]
        post(
            srv,
            f"/api/repo/{root}/instance",
            b'{"typename":"uint8blk","dataname":"grey","BlockSize":"64,64,64"}',
        )
        post(
            srv,
            f"/api/repo/{root}/instance",
            b'{"typename":"labelmap","dataname":"seg","BlockSize":"64,64,64",'
            b'"MaxDownresLevel":"1"}',
        )
        z, y, x = SHAPE
        post(
            srv, f"/api/node/{root}/grey/raw/0_1_2/{x}_{y}_{z}/0_0_0", grey_volume(False).tobytes()
        )
        post(srv, f"/api/node/{root}/seg/raw/0_1_2/{x}_{y}_{z}/0_0_0", supervoxels().tobytes())
        post(srv, f"/api/node/{root}/seg/downres")
        commit = post(srv, f"/api/node/{root}/commit", b'{"note":"loaded"}')["commit_id"]
        child = post(srv, f"/api/node/{root}/newversion", b'{"note":"edits"}')["child"]
        edited = grey_volume(True)[:, :64, :64]
        post(srv, f"/api/node/{child}/grey/raw/0_1_2/64_64_64/0_0_0", edited.tobytes())
        post(srv, f"/api/node/{child}/seg/merge", b"[1, 2]")
        branch = post(srv, f"/api/node/{root}/branch", b'{"branch":"proof"}')["child"]
        post(srv, f"/api/node/{root}/tag", b'{"tag":"v1.0","note":"first release"}')
        yield Fixture(srv, root, child, branch, commit)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, live: Fixture, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(live.srv.url + "/")
    pg.wait_for_selector("body[data-ready=true]")
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"console-{request.node.name}.png"
    pg.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    context.close()
    assert not errors, errors


def open_repo(pg: Any, live: Fixture) -> None:
    pg.click(f"#repo-list button[data-uuid='{live.root}']")
    pg.wait_for_selector("#dag svg g.node")
    wait_render(pg, 1)


def wait_render(pg: Any, at_least: int) -> int:
    pg.wait_for_function(
        f"Number(document.getElementById('slice').dataset.renders || 0) >= {at_least}"
    )
    return int(pg.eval_on_selector("#slice", "c => Number(c.dataset.renders)"))


def canvas_pixels(pg: Any) -> np.ndarray:
    url = pg.eval_on_selector("#slice", "c => c.toDataURL('image/png')")
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def select_version(pg: Any, uuid: str) -> None:
    renders = wait_render(pg, 1)
    pg.click(f"#dag g.node[data-uuid='{uuid}']")
    pg.wait_for_selector(f"#dag g.node.selected[data-uuid='{uuid}']")
    wait_render(pg, renders + 1)


def test_console_files_are_served(live: Fixture) -> None:
    """The page and its modules, with ETags; nothing outside the console folder."""
    status, headers, body = live.srv.request("GET", "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b'<script type="module" src="/console/main.js">' in body
    status, _, _ = live.srv.request("GET", "/", headers={"If-None-Match": headers["etag"]})
    assert status == 304
    for name, kind in (("main.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, _ = live.srv.request("GET", f"/console/{name}")
        assert (status, headers["content-type"].split(";")[0]) == (200, kind)
    for path in ("/console/nothing.js", "/console/..%2Fconsole.py", "/console/../app.py"):
        status, _, _ = live.srv.request("GET", path)
        assert status == 404, path


def test_repos_and_dag(page: Any, live: Fixture) -> None:
    aliases = page.locator("#repo-list button").all_inner_texts()
    assert [a.split("\n")[0] for a in aliases] == ["em", "empty"]
    open_repo(page, live)
    assert page.inner_text("#repo-title") == "em"
    nodes = page.locator("#dag svg g.node")
    assert nodes.count() == 4  # root, child, branch, tag
    locked = page.locator("#dag g.node.locked")
    assert sorted(locked.evaluate_all("gs => gs.map(g => g.dataset.uuid)")) == sorted(
        [live.root, "v1.0"]
    )
    # a tag is a diamond with its name, in its own row
    assert page.locator("#dag g.node[data-uuid='v1.0'] rect").count() == 1
    assert page.locator("#dag g.node circle.shape").count() == 3
    dag_text = page.text_content("#dag svg")
    assert live.commit[:10] in dag_text  # the root's commit id under it
    assert "proof" in dag_text  # the branch's row
    assert "tag v1.0" in dag_text
    # the newest leaf is selected; picking the root shows its commit id and the instances
    select_version(page, live.root)
    assert live.commit in page.inner_text("#version-info")
    row = page.inner_text("#instances tr[data-instance='grey']")
    assert "0, 0, 0 – 127, 127, 63" in row
    assert "64, 64, 64" in row
    assert "MaxDownresLevel=1" in page.inner_text("#instances tr[data-instance='seg']")
    assert "loaded" in page.inner_text("#version-info")


def test_slice_shows_the_voxels_and_moves(page: Any, live: Fixture) -> None:
    open_repo(page, live)
    select_version(page, live.root)
    renders = wait_render(page, 1)
    page.select_option("#label-layer", "")
    renders = wait_render(page, renders + 1)
    before = canvas_pixels(page)
    grey = grey_volume(False)

    def check_against_volume(img: np.ndarray) -> None:
        seen = 0
        for px, py in ((256, 256), (3, 5), (200, 300), (300, 220), (500, 509)):
            voxel = page.evaluate(f"consoleViewer.voxelAt({px}, {py})")
            if voxel is None:
                assert tuple(img[py, px]) == (0, 0, 0)
                continue
            x, y, z = voxel
            assert tuple(img[py, px]) == (grey[z, y, x],) * 3, (px, py, voxel)
            seen += 1
        assert seen >= 2

    check_against_volume(before)
    z0 = page.evaluate("consoleViewer.center[2]")
    page.mouse.move(256, 256)
    box = page.locator("#slice").bounding_box()
    page.mouse.move(box["x"] + 256, box["y"] + 256)
    page.mouse.wheel(0, 100)
    renders = wait_render(page, renders + 1)
    assert page.evaluate("consoleViewer.center[2]") == z0 + 1
    after = canvas_pixels(page)
    assert not np.array_equal(before, after)
    check_against_volume(after)
    # the slider moves it too
    page.eval_on_selector(
        "#slice-pos", "s => { s.value = '3'; s.dispatchEvent(new Event('input')); }"
    )
    renders = wait_render(page, renders + 1)
    assert page.evaluate("consoleViewer.center[2]") == 3
    check_against_volume(canvas_pixels(page))
    # another plane: xz, whose third axis is y
    page.select_option("#plane", "xz")
    renders = wait_render(page, renders + 1)
    assert page.inner_text("#axis-name") == "y"
    check_against_volume(canvas_pixels(page))
    # and yz, whose third axis is x
    page.select_option("#plane", "yz")
    renders = wait_render(page, renders + 1)
    assert page.inner_text("#axis-name") == "x"
    check_against_volume(canvas_pixels(page))
    page.select_option("#plane", "xz")
    renders = wait_render(page, renders + 1)
    # the 128-voxel plane fits at 4x; at 8x each voxel is 8x8 pixels
    assert page.input_value("#zoom") == "4"
    page.select_option("#zoom", "8")
    wait_render(page, renders + 1)
    zoomed = canvas_pixels(page)
    check_against_volume(zoomed)
    assert np.array_equal(zoomed[256:264, 256:264], np.broadcast_to(zoomed[256, 256], (8, 8, 3)))


def test_click_shows_label_and_body(page: Any, live: Fixture) -> None:
    open_repo(page, live)
    select_version(page, live.child)
    labels = supervoxels()
    # find a canvas point over supervoxel 2, which the child merged into body 1
    point = page.evaluate(
        """() => {
            for (let py = 0; py < 512; py += 8) for (let px = 0; px < 512; px += 8) {
                const v = consoleViewer.voxelAt(px, py);
                if (v && v[0] >= 32 && v[0] < 64 && v[1] < 32 && v[2] < 32) return [px, py];
            }
            return null;
        }"""
    )
    assert point is not None
    box = page.locator("#slice").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_selector("#pick-body")
    x, y, z = (int(v) for v in page.get_attribute("#pick", "data-voxel").split(","))
    assert page.inner_text("#pick-supervoxel") == str(labels[z, y, x]) == "2"
    assert page.inner_text("#pick-body") == "1"
    assert f"grey {grey_volume(True)[z, y, x]}" in page.inner_text("#pick")
    # without the grey, labels are drawn opaque in their body's hash colour: supervoxels
    # 1 and 2 share body 1 at the child, and are two colours at the root
    renders = wait_render(page, 1)
    page.select_option("#grey-layer", "")
    renders = wait_render(page, renders + 1)

    def colour_at(x: int, y: int, z: int) -> tuple[int, ...]:
        px, py = page.evaluate(
            f"""() => {{
                for (let py = 0; py < 512; py++) for (let px = 0; px < 512; px++) {{
                    const v = consoleViewer.voxelAt(px, py);
                    if (v && v[0] === {x} && v[1] === {y}) return [px, py];
                }}
            }}"""
        )
        assert page.evaluate("consoleViewer.center[2]") == z
        return tuple(int(c) for c in canvas_pixels(page)[py, px])

    z = page.evaluate("consoleViewer.center[2]")
    sv1, sv2, sv3 = colour_at(10, 10, z), colour_at(40, 10, z), colour_at(70, 10, z)
    assert sv1 == sv2 != sv3
    assert sv1 != (0, 0, 0)
    select_version(page, live.root)
    assert page.input_value("#grey-layer") == ""
    assert colour_at(10, 10, z) != colour_at(40, 10, z)


def test_diff_between_versions(page: Any, live: Fixture) -> None:
    open_repo(page, live)
    select_version(page, live.child)
    # the defaults are the child's parent -> the child
    assert page.input_value("#diff-from") == live.root
    assert page.input_value("#diff-to") == live.child
    page.click("#diff-run")
    page.wait_for_selector("#diff tr[data-instance='grey']")
    grey = page.locator("#diff tr[data-instance='grey']")
    assert grey.locator("td[data-kind='changed']").inner_text() == "1"
    assert grey.locator("td[data-kind='added']").inner_text() == "0"
    grey.locator("summary").click()
    assert "block 0_0_0" in grey.inner_text()
    seg = page.inner_text("#diff tr[data-instance='seg']")
    assert "no change" not in seg
    # the other way round, root -> branch: nothing changed
    page.select_option("#diff-to", live.branch)
    page.click("#diff-run")
    page.wait_for_function(
        "document.querySelector('#diff p') === null && "
        "document.querySelector('#diff tr[data-instance=grey]') !== null && "
        "document.querySelector('#diff').textContent.includes('no change')"
    )
    assert page.locator("#diff td[data-kind='changed']").all_inner_texts() == ["0", "0"]


def test_neuroglancer_link(page: Any, live: Fixture) -> None:
    open_repo(page, live)
    select_version(page, live.root)
    link = page.input_value("#ng-link")
    base, _, fragment = link.partition("#!")
    assert base == "https://neuroglancer-demo.appspot.com/"
    state = json.loads(urllib.parse.unquote(fragment))
    sources = {layer["name"]: (layer["type"], layer["source"]) for layer in state["layers"]}
    assert sources == {
        "grey": ("image", f"dvid://{live.srv.url}/{live.root}/grey"),
        "seg": ("segmentation", f"dvid://{live.srv.url}/{live.root}/seg"),
    }
    page.click("#copy-ng")
    page.wait_for_function("document.getElementById('ng-status').textContent !== ''")


# -- neuroglancer itself, served locally by the neuroglancer package ------------------


@pytest.fixture
def neuroglancer_page(
    browser: Any, live: Fixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, list[tuple[Any, str]]]]:
    """Neuroglancer's client (from the ``neuroglancer`` package's own server) on dvid://.

    The package's client asks its Python server for DVID credentials; a dummy token in
    ``DVID_CREDENTIALS`` answers (reads need none: cas_dvid ignores it on GET).
    """
    import neuroglancer

    monkeypatch.setenv("DVID_CREDENTIALS", f"{live.srv.url}=unused-read-token")
    neuroglancer.set_server_bind_address("127.0.0.1")
    viewer = neuroglancer.Viewer()
    with viewer.txn() as st:
        st.layers["grey"] = neuroglancer.ImageLayer(
            source=f"dvid://{live.srv.url}/{live.root}/grey"
        )
        st.layers["seg"] = neuroglancer.SegmentationLayer(
            source=f"dvid://{live.srv.url}/{live.root}/seg"
        )
        st.layout = "xy"
        st.position = [64, 64, 32]
        st.cross_section_scale = (
            2e-9  # metres a pixel: 4 pixels a voxel, the volume fills the panel
        )
    context = browser.new_context(viewport={"width": 900, "height": 700})
    pg = context.new_page()
    log: list[tuple[Any, str]] = []
    pg.on("response", lambda r: log.append((r.status, r.url)))
    pg.on("requestfailed", lambda r: log.append((f"failed: {r.failure}", r.url)))
    pg.goto(viewer.get_viewer_url())
    yield pg, log
    context.close()
    neuroglancer.stop()


def test_neuroglancer_reads_every_chunk(
    neuroglancer_page: tuple[Any, list[tuple[Any, str]]], live: Fixture
) -> None:
    pg, log = neuroglancer_page
    ours = live.srv.url + "/"

    def chunks(kind: str) -> list[str]:
        return [u for _, u in log if u.startswith(ours) and kind in u]

    webgl = pg.evaluate("!!document.createElement('canvas').getContext('webgl2')")
    deadline = 20.0
    waited = 0.0
    # 2x2 chunks of 64^3 cover the z=32 slice of each layer
    while waited < deadline and (len(chunks("/grey/raw/")) < 4 or len(chunks("/seg/raw/")) < 4):
        pg.wait_for_timeout(250)
        waited += 0.25
    pg.wait_for_timeout(1000)  # let any further requests land in the log
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "neuroglancer-dvid.png"
    png = pg.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    to_us = [(status, url) for status, url in log if url.startswith(ours)]
    assert any("/api/repos/info" in u for _, u in to_us), to_us
    bad = [(status, url) for status, url in to_us if status != 200]
    assert not bad, bad
    if not webgl:
        pytest.skip(
            "WebGL2 is unavailable in this headless chromium: only the requests were checked"
        )
    assert len(chunks("/grey/raw/")) >= 4, to_us
    assert any("jpeg" in u for u in chunks("/grey/raw/"))
    assert any("compression=googlegzip" in u for u in chunks("/seg/raw/"))
    # the layers rendered: the middle of the panel shows many colours (segments over grey),
    # not the blank background
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    panel = pg.locator(".neuroglancer-rendered-data-panel").first.bounding_box()
    cx, cy = int(panel["x"] + panel["width"] / 2), int(panel["y"] + panel["height"] / 2)
    crop = img[cy - 120 : cy - 10, cx - 120 : cx - 10].reshape(-1, 3)
    assert len({tuple(c) for c in crop}) > 16
