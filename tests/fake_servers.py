"""Local HTTP servers speaking Sentinel Hub (OAuth2, Catalog, Process) and STAC API + COG range requests.

The real sentinelhub-py, pystac-client and GDAL code paths talk to these over
127.0.0.1. Faults are injected per path prefix and consumed in order:
``("status", code, headers)``, ``("echo", code)`` (the request's headers and body in the
error body), ``("reset",)``, ``("truncate",)``, ``("corrupt",)``, ``("slow", seconds)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

CLIENT_ID = "berthwatch-test-client"
CLIENT_SECRET = "s3cr3t-Value-That-Must-Not-Leak"
ACCESS_TOKEN = "eyJhbGciOiJub25lIn0." + base64.urlsafe_b64encode(
    json.dumps({"azp": CLIENT_ID, "sub": "tok-Must-Not-Leak"}).encode()).decode().rstrip("=") + ".c2ln"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    time: float

    def json(self):
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, obj, status: int = 200, headers: dict | None = None):
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


class FakeServer:
    """A threaded HTTP/1.1 server with prefix routes, fault injection and a request log."""

    def __init__(self, ssl_context=None):
        self.scheme = "https" if ssl_context is not None else "http"
        self.routes: list[tuple[str, str, object]] = []
        self.faults: dict[str, deque] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                u = urlparse(self.path)
                req = Request(self.command, u.path, parse_qs(u.query), dict(self.headers), body, time.monotonic())
                with server.lock:
                    server.requests.append(req)
                fault = server._next_fault(req)
                if fault and fault[0] == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault and fault[0] == "slow":
                    time.sleep(fault[1])
                if fault and fault[0] == "echo":  # a server that echoes the request in its error body
                    echoed = {"error": {"status": fault[1], "authorization": req.headers.get("Authorization"),
                                        "request": {"headers": req.headers, "body": req.body.decode("latin-1")}}}
                    resp = Response.json(echoed, fault[1])
                elif fault and fault[0] == "status":
                    resp = Response(fault[1], b'{"error": {"status": %d, "reason": "injected"}}' % fault[1],
                                    {"Content-Type": "application/json", **(fault[2] if len(fault) > 2 else {})})
                else:
                    resp = server._dispatch(req)
                if fault and fault[0] == "corrupt":
                    resp = Response(200, b"II*\x00" + b"\x17garbage" * 50, resp.headers)
                try:
                    self.send_response(resp.status)
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(resp.body)))
                    self.end_headers()
                    if self.command == "HEAD":
                        return
                    if fault and fault[0] == "truncate":
                        self.wfile.write(resp.body[: len(resp.body) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def route(self, method: str, prefix: str, fn) -> None:
        self.routes.append((method, prefix, fn))

    def inject(self, prefix: str, *faults) -> None:
        self.faults.setdefault(prefix, deque()).extend(faults)

    def _next_fault(self, req: Request):
        with self.lock:
            for prefix, queue in self.faults.items():
                if req.path.startswith(prefix) and queue and req.method != "HEAD":
                    return queue.popleft()
        return None

    def _dispatch(self, req: Request) -> Response:
        for method, prefix, fn in self.routes:
            if req.method in (method, "HEAD" if method == "GET" else None) and req.path.startswith(prefix):
                return fn(req)
        return Response(404, b"not found")

    def hits(self, prefix: str, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix) and (method is None or r.method == method)]

    def start(self) -> "FakeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- rasters
def band_values(x: np.ndarray, y: np.ndarray, band: int) -> np.ndarray:
    """A position-dependent pattern, so stitching or reprojection errors change values."""
    return (0.05 + 0.1 * band + ((x / 10.0) % 37) * 1e-3 + ((y / 10.0) % 23) * 1e-4).astype(np.float32)


def pattern(bounds, width: int, height: int, bands: int) -> np.ndarray:
    left, bottom, right, top = bounds
    xs = left + (np.arange(width) + 0.5) * (right - left) / width
    ys = top - (np.arange(height) + 0.5) * (top - bottom) / height
    x, y = np.meshgrid(xs, ys)
    return np.stack([band_values(x, y, b) for b in range(bands)])


def tiff_bytes(data: np.ndarray, bounds, epsg: int, descriptions=None, nodata=None, tiled=False) -> bytes:
    count, height, width = data.shape
    profile = dict(driver="GTiff", dtype=data.dtype.name, count=count, width=width, height=height,
                   crs=f"EPSG:{epsg}", transform=from_bounds(*bounds, width, height), nodata=nodata)
    if tiled:
        profile.update(tiled=True, blockxsize=64, blockysize=64)
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data)
            for i, d in enumerate(descriptions or [], 1):
                ds.set_band_description(i, d)
        return mem.read()


def write_cog(path: Path, data: np.ndarray, bounds, epsg: int, descriptions=None, nodata=None) -> Path:
    from rasterio.shutil import copy as rio_copy

    raw = tiff_bytes(data, bounds, epsg, descriptions, nodata)
    with MemoryFile(raw) as mem, mem.open() as src:
        rio_copy(src, path, driver="COG", blocksize=128, overviews="NONE")
    return path


# ---------------------------------------------------------------- Sentinel Hub
def _footprint(lon0, lat0, lon1, lat1):
    return {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}


class SentinelHubFake:
    """OAuth2 client-credentials, Catalog API search with ``next`` paging, Process API GeoTIFFs."""

    def __init__(self, server: FakeServer, scenes: dict[str, list[dict]], page_size: int = 2):
        self.server, self.scenes, self.page_size = server, scenes, page_size
        self.process_bodies: list[dict] = []
        server.route("POST", "/oauth/token", self.token)
        # sentinelhub-py's default token URL on services.sentinel-hub.com
        server.route("POST", "/auth/realms/main/protocol/openid-connect/token", self.token)
        server.route("POST", "/api/v1/catalog/1.0.0/search", self.search)
        server.route("POST", "/api/v1/process", self.process)

    @property
    def token_url(self) -> str:
        return self.server.url + "/oauth/token"

    def token(self, req: Request) -> Response:
        form = parse_qs(req.body.decode())
        auth = req.headers.get("Authorization", "")
        cid, secret = form.get("client_id", [None])[0], form.get("client_secret", [None])[0]
        if auth.startswith("Basic "):
            cid, secret = base64.b64decode(auth[6:]).decode().split(":", 1)
        if (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            return Response.json({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
        return Response.json({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
                              "expires_at": time.time() + 3600})

    def _authorised(self, req: Request) -> bool:
        return req.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def search(self, req: Request) -> Response:
        if not self._authorised(req):
            return Response.json({"error": "unauthorised"}, 401)
        body = req.json()
        coll = body["collections"][0]
        start, end = body["datetime"].split("/")
        t0 = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
        t1 = dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
        feats = [f for f in self.scenes.get(coll, [])
                 if t0 <= dt.datetime.fromisoformat(f["properties"]["datetime"].replace("Z", "+00:00")) <= t1]
        flt = body.get("filter") or ""
        m = re.search(r"eo:cloud_cover <= ([\d.]+)", flt)
        if m:
            feats = [f for f in feats if f["properties"].get("eo:cloud_cover", 0) <= float(m.group(1))]
        m = re.search(r"sat:orbit_state='(\w+)'", flt)
        if m:
            feats = [f for f in feats if f["properties"].get("sat:orbit_state") == m.group(1)]
        offset = int(body.get("next") or 0)
        page = feats[offset: offset + self.page_size]
        ctx = {"limit": body.get("limit"), "returned": len(page)}
        if offset + self.page_size < len(feats):
            ctx["next"] = offset + self.page_size
        return Response.json({"type": "FeatureCollection", "features": page, "context": ctx})

    def process(self, req: Request) -> Response:
        if not self._authorised(req):
            return Response.json({"error": {"status": 401, "reason": "Unauthorized"}}, 401)
        body = req.json()
        self.process_bodies.append(body)
        bounds = body["input"]["bounds"]["bbox"]
        epsg = int(body["input"]["bounds"]["properties"]["crs"].rstrip("/").split("/")[-1])
        w, h = body["output"]["width"], body["output"]["height"]
        nbands = int(re.search(r"bands:\s*(\d+),\s*sampleType", body["evalscript"]).group(1))
        data = pattern(bounds, w, h, nbands)
        return Response(200, tiff_bytes(data, bounds, epsg), {"Content-Type": "image/tiff"})


def sh_feature(fid: str, when: str, bbox_lonlat, cloud=10.0, orbit="descending", s1=False) -> dict:
    props = {"datetime": when}
    if s1:
        props.update({"sat:orbit_state": orbit, "sar:instrument_mode": "IW", "s1:polarization": "DV"})
    else:
        props["eo:cloud_cover"] = cloud
    return {"type": "Feature", "id": fid, "geometry": _footprint(*bbox_lonlat), "properties": props,
            "bbox": list(bbox_lonlat)}


# ---------------------------------------------------------------- STAC API
class StacApiFake:
    """A STAC API (landing page, conformance, POST /search with token paging) and COG files with ranges."""

    def __init__(self, server: FakeServer, items: list[dict], files: dict[str, bytes], page_size: int = 2):
        self.server, self.items, self.files, self.page_size = server, items, files, page_size
        server.route("GET", "/stac/search", self.search)
        server.route("POST", "/stac/search", self.search)
        server.route("GET", "/stac/conformance", self.conformance)
        server.route("GET", "/stac", self.landing)
        server.route("GET", "/files/", self.file)

    @property
    def url(self) -> str:
        return self.server.url + "/stac"

    def landing(self, req: Request) -> Response:
        base = self.url
        return Response.json({
            "type": "Catalog", "id": "fake", "description": "fake STAC API", "stac_version": "1.0.0",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                           "https://api.stacspec.org/v1.0.0/item-search#query"],
            "links": [{"rel": "self", "href": base}, {"rel": "root", "href": base},
                      {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "POST"},
                      {"rel": "conformance", "href": base + "/conformance"}]})

    def conformance(self, req: Request) -> Response:
        return Response.json({"conformsTo": ["https://api.stacspec.org/v1.0.0/item-search"]})

    def search(self, req: Request) -> Response:
        body = req.json() if req.method == "POST" else {k: v[0] for k, v in req.query.items()}
        colls = body.get("collections") or []
        feats = [i for i in self.items if not colls or i["collection"] in colls]
        if body.get("datetime"):
            a, b = body["datetime"].split("/")
            def ok(i):
                d = i["properties"]["datetime"][:10]
                return (a == ".." or d >= a[:10]) and (b == ".." or d <= b[:10])
            feats = [i for i in feats if ok(i)]
        offset = int(body.get("token") or 0)
        page = feats[offset: offset + self.page_size]
        links = []
        if offset + self.page_size < len(feats):
            links.append({"rel": "next", "href": self.url + "/search", "method": "POST",
                          "body": {**body, "token": str(offset + self.page_size)}})
        return Response.json({"type": "FeatureCollection", "features": page, "links": links,
                              "context": {"returned": len(page)}})

    def file(self, req: Request) -> Response:
        name = req.path[len("/files/"):]
        data = self.files.get(name)
        if data is None:
            return Response(404, b"")
        headers = {"Accept-Ranges": "bytes", "Content-Type": "image/tiff"}
        rng = req.headers.get("Range")
        if rng and "," not in rng:
            m = re.match(r"bytes=(\d+)-(\d*)", rng)
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(206, data[start:end + 1], headers)
        return Response(200, data, headers)


def stac_item(item_id: str, collection: str, when: str, bbox_lonlat, assets: dict, props: dict | None = None) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
            "geometry": _footprint(*bbox_lonlat), "bbox": list(bbox_lonlat),
            "properties": {"datetime": when, **(props or {})}, "assets": assets, "links": []}


def aoi_file(tmp_path: Path, aoi_id: str, lon0: float, lat0: float, lon1: float, lat1: float) -> Path:
    """A small AOI GeoJSON (a few hundred metres a side)."""
    fc = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"id": aoi_id, "name": aoi_id, "country": "KP", "role": "origin", "notes": "test AOI"},
        "geometry": _footprint(lon0, lat0, lon1, lat1)}]}
    p = tmp_path / f"{aoi_id}.geojson"
    p.write_text(json.dumps(fc))
    return p


def all_text_under(root: Path) -> str:
    """Every file's bytes under ``root`` decoded leniently (for secret greps)."""
    chunks = []
    for p in Path(root).rglob("*"):
        if p.is_file():
            chunks.append(p.read_bytes().decode("latin-1"))
    return "\n".join(chunks)

