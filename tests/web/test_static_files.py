"""Static files as a browser gets them: Label Studio's bundle and ours,
gzip-compressed when the browser accepts it, compressed once, and cached
for a year under a URL that names their content."""
from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest

from annotate import create_app
from annotate.web import static_files
from annotate.web.static_files import StaticFiles

STATIC = Path(__file__).resolve().parents[2] / "static"
LS_JS = "node_modules/@heartexlabs/label-studio/build/static/js/main.js"
LS_CSS = "node_modules/@heartexlabs/label-studio/build/static/css/main.css"
GZIP = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium sends


def version_of(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:16]


def linked(html: str, name: str) -> str:
    """The URL the page links `name` with."""
    found = re.search(rf'(?:src|href)="(/static/{re.escape(name)}[^"]*)"', html)
    assert found, f"the page does not link {name}"
    return found.group(1).replace("&amp;", "&")


def test_the_workbench_links_each_static_file_by_the_hash_of_its_content(client, auth, people):
    auth.login(people.make())
    html = client.get("/work").get_data(as_text=True)
    for name in (LS_JS, LS_CSS, "css/app.css", "css/workbench.css", "js/workbench.js"):
        assert linked(html, name) == f"/static/{name}?v={version_of(name)}"


def test_label_studio_comes_compressed_and_is_kept_a_year(client, auth, people):
    auth.login(people.make())
    url = linked(client.get("/work").get_data(as_text=True), LS_JS)
    original = (STATIC / LS_JS).read_bytes()

    response = client.get(url, headers=GZIP)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert int(response.headers["Content-Length"]) == len(response.data) < len(original) / 3
    assert gzip.decompress(response.data) == original
    assert response.headers["Vary"] == "Accept-Encoding"  # never Cookie: a sign-in must not void the cache
    cache = response.headers["Cache-Control"]
    assert "public" in cache and "max-age=31536000" in cache and "immutable" in cache
    assert response.headers["ETag"] == f'"{version_of(LS_JS)}-gzip"'
    assert response.headers["Last-Modified"]


def test_a_browser_that_does_not_accept_gzip_gets_the_file_as_it_is(client):
    url = f"/static/{LS_CSS}?v={version_of(LS_CSS)}"
    original = (STATIC / LS_CSS).read_bytes()
    for headers in ({}, {"Accept-Encoding": "gzip;q=0, identity"}):
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers
        assert response.data == original
        assert response.headers["Vary"] == "Accept-Encoding"  # a shared cache must not hand it the gzip copy
        assert response.headers["ETag"] == f'"{version_of(LS_CSS)}"'


def test_unchanged_files_are_revalidated_with_a_304_and_no_body(client):
    url = f"/static/{LS_JS}"  # unversioned: the browser must ask each time
    first = client.get(url, headers=GZIP)
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["Content-Encoding"] == "gzip"
    again = client.get(url, headers={**GZIP, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"] and again.headers["Vary"] == "Accept-Encoding"
    since = client.get(url, headers={**GZIP, "If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    # The gzip copy's ETag does not validate the plain file, nor the other way round.
    plain = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert plain.status_code == 200 and plain.data == (STATIC / LS_JS).read_bytes()


def test_an_old_version_is_served_fresh_but_not_kept(client):
    response = client.get("/static/css/app.css?v=0000000000000000", headers=GZIP)
    assert response.status_code == 200
    assert gzip.decompress(response.data) == (STATIC / "css/app.css").read_bytes()
    assert response.headers["Cache-Control"] == "no-cache"


def test_each_file_is_compressed_once_for_every_worker_and_restart(app, client, monkeypatch):
    calls = []
    real = gzip.compress
    monkeypatch.setattr(static_files.gzip, "compress", lambda data, **kw: calls.append(len(data)) or real(data, **kw))
    url = f"/static/{LS_JS}?v={version_of(LS_JS)}"
    bodies = [client.get(url, headers=GZIP).data for _ in range(3)]
    # Another gunicorn worker, or the app after a restart: same instance folder.
    other = create_app({**app.config, "INSTANCE_PATH": app.instance_path}, check_services=False)
    bodies.append(other.test_client().get(url, headers=GZIP).data)
    assert calls == [(STATIC / LS_JS).stat().st_size]
    assert len(set(bodies)) == 1
    kept = list((Path(app.instance_path) / "static-gzip").iterdir())
    assert [p.name for p in kept] == [f"{version_of(LS_JS)}.gz"]
    assert gzip.decompress(kept[0].read_bytes()) == (STATIC / LS_JS).read_bytes()


def test_images_and_tiny_files_are_sent_as_they_are(client):
    png = "node_modules/@heartexlabs/label-studio/images/logo.png"
    response = client.get(f"/static/{png}", headers=GZIP)
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert response.data == (STATIC / png).read_bytes() and "Vary" not in response.headers
    tiny = client.get("/static/js/confirm.js", headers=GZIP)  # 348 bytes
    assert "Content-Encoding" not in tiny.headers and tiny.data == (STATIC / "js/confirm.js").read_bytes()


@pytest.mark.parametrize("path", ["/static/../wsgi.py", "/static/%2e%2e/wsgi.py", "/static/js",
                                  "/static/js/nothing-here.js", "/static//etc/passwd"])
def test_nothing_outside_the_static_folder_is_served(client, path):
    response = client.get(path, headers=GZIP, follow_redirects=True)  # "//" is redirected to "/" first
    assert response.status_code == 404
    assert b"create_app" not in response.data and b"root:" not in response.data


def test_a_changed_file_gets_a_new_version_and_a_new_gzip_copy(tmp_path):
    root, cache = tmp_path / "static", tmp_path / "cache"
    (root / "js").mkdir(parents=True)
    script = root / "js" / "page.js"
    script.write_text("console.log('one');\n" * 200)
    files = StaticFiles(str(root), str(cache))
    before = files.find("js/page.js")
    assert gzip.decompress(Path(files.gzipped(before)).read_bytes()) == script.read_bytes()
    script.write_text("console.log('two');\n" * 300)  # an upgrade: new content, new size
    after = files.find("js/page.js")
    assert after.digest != before.digest
    assert gzip.decompress(Path(files.gzipped(after)).read_bytes()) == script.read_bytes()
    assert files.find("../outside.js") is None and files.find("js") is None
