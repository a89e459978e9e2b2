"""Our static files and the npm front end (Label Studio's 2 MB bundle),
served compressed and cached by the browser.

`url_for('static', filename=...)` adds `?v=<hash of the file's content>`. A
request carrying the current hash may be kept for a year without asking
again (`immutable`), so a repeat visit costs no request; any other request
is revalidated (ETag and Last-Modified, answered 304 when unchanged).

Text files (JS, CSS, JSON, SVG, ...) go out gzip-compressed to browsers that
accept it, with `Content-Encoding: gzip` and `Vary: Accept-Encoding`. Each
content is compressed once, on its first request, into a file named by its
hash under instance/static-gzip/: gunicorn's workers share it and a restart
finds it there. Brotli would save a little more, but none of our pinned
dependencies brings it.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.utils import send_file

from .access import public

ONE_YEAR = 365 * 24 * 3600
# Worth compressing: text. Images, fonts in woff/woff2 and archives are compressed already.
COMPRESSIBLE = {".js", ".mjs", ".css", ".map", ".json", ".svg", ".html", ".txt", ".xml", ".csv",
                ".ttf", ".otf", ".eot", ".ico", ".wasm"}
# Below this size gzip's header and a round of decompression gain nothing.
MIN_COMPRESS_BYTES = 1024


@dataclass(frozen=True)
class StaticFile:
    path: str
    stamp: tuple[int, int]  # (mtime in ns, size) when it was hashed
    digest: str             # of its content: its version and ETag
    modified: datetime

    @property
    def compressible(self) -> bool:
        return os.path.splitext(self.path)[1].lower() in COMPRESSIBLE and self.stamp[1] >= MIN_COMPRESS_BYTES


class StaticFiles:
    """The files under `root`, with their content hash and a gzip copy under `cache`, each made once."""

    def __init__(self, root: str, cache: str) -> None:
        self.root = root
        self.cache = cache
        self._known: dict[str, StaticFile] = {}
        self._lock = threading.Lock()

    def find(self, filename: str) -> StaticFile | None:
        """The file, or None if there is none under the root (safe_join refuses "..")."""
        path = safe_join(self.root, filename)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._known.get(path)
        if known is not None and known.stamp == stamp:
            return known
        # A new or changed file (an npm reinstall): hash it again; a stat per request finds it.
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
        found = StaticFile(path, stamp, digest.hexdigest()[:16],
                           datetime.fromtimestamp(stat.st_mtime, timezone.utc).replace(microsecond=0))
        self._known[path] = found
        return found

    def gzipped(self, file: StaticFile) -> str:
        """The path of the file's gzip copy, made on the first call for this content."""
        target = os.path.join(self.cache, f"{file.digest}.gz")
        if os.path.exists(target):
            return target
        with self._lock:
            if os.path.exists(target):
                return target
            os.makedirs(self.cache, exist_ok=True)
            with open(file.path, "rb") as source:
                packed = gzip.compress(source.read(), compresslevel=9, mtime=0)
            # Written aside, then renamed: another worker never reads half a file.
            handle, scratch = tempfile.mkstemp(dir=self.cache, suffix=".part")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(packed)
                os.replace(scratch, target)
            except BaseException:
                if os.path.exists(scratch):
                    os.unlink(scratch)
                raise
        return target


class StaticResponse(Response):
    """A static file never depends on the cookie, but Flask adds `Vary: Cookie`
    once anything read the session, and Flask-Login's after-request hook
    does on every request. Left there, a browser would revalidate its cached
    copies each time the session cookie changes (a sign-in, a flash message)."""

    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        vary = [v.strip() for v in headers.get("Vary", "").split(",") if v.strip() and v.strip().lower() != "cookie"]
        if vary:
            headers["Vary"] = ", ".join(vary)
        else:
            headers.pop("Vary", None)
        return headers


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


@public
def serve(filename: str):
    files: StaticFiles = current_app.extensions["static_files"]
    file = files.find(filename)
    if file is None:
        raise NotFound()
    mimetype = mimetypes.guess_type(file.path)[0] or "application/octet-stream"
    encoded = file.compressible and _accepts_gzip()
    # A URL naming this content never changes; any other (unversioned, an older
    # version) is revalidated on every use: send_file's default, no-cache.
    versioned = request.args.get("v") == file.digest
    response = send_file(files.gzipped(file) if encoded else file.path, environ=request.environ,
                         mimetype=mimetype, download_name=os.path.basename(file.path), conditional=True,
                         etag=f"{file.digest}-gzip" if encoded else file.digest, last_modified=file.modified,
                         max_age=ONE_YEAR if versioned else None, response_class=StaticResponse,
                         use_x_sendfile=current_app.config["USE_X_SENDFILE"])
    if versioned:
        response.cache_control.immutable = True
    if encoded and response.status_code != 304:
        response.headers["Content-Encoding"] = "gzip"
    if file.compressible:
        response.vary.add("Accept-Encoding")
    return response


def init_app(app: Flask) -> None:
    """Serve /static/ from here, and version the URLs url_for('static', ...) makes."""
    files = StaticFiles(app.static_folder, os.path.join(app.instance_path, "static-gzip"))
    app.extensions["static_files"] = files
    app.view_functions["static"] = serve  # Flask's own URL rule and endpoint, our view

    @app.url_defaults
    def add_version(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "v" not in values and "filename" in values:
            file = files.find(values["filename"])
            if file is not None:
                values["v"] = file.digest
