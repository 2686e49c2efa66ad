#!/usr/bin/env python3
"""A fake HuggingFace Hub for tokenprobe's tests: the Hub's routes and headers over local files.

Usage: hub_fake_hub.py CONFIG.json   (prints the port it listens on, then serves on 127.0.0.1)

CONFIG: {"repos": {"OWNER/NAME": {"commit": 40 hex, "files": {"path/in/repo": "/local/file"},
                                  "gated": bool, "corrupt": [paths served with a flipped byte],
                                  "cut_once": {"path": bytes}, "announce_size": {"path": bytes},
                                  "ignore_range": [paths answered 200 to a Range request],
                                  "moved_to": "OWNER/NAME" (a renamed repository: 307)}}}

Routes, as huggingface.co answers them:
  GET  /api/models/OWNER/NAME/revision/REV   {"sha": commit, "siblings": [{"rfilename": ...}]}
  HEAD|GET /OWNER/NAME/resolve/REV/PATH      git-stored files: 200 with ETag (git blob SHA-1),
        X-Repo-Commit; LFS files (.safetensors, .gguf, .bin): 302 to the "CDN" on another host
        name (localhost instead of 127.0.0.1) with X-Linked-Etag (SHA-256), X-Linked-Size.
  GET  /cdn/OWNER/NAME/PATH?sig=...          the bytes; Range: bytes=N- answered with 206.
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) and
X-Error-Message. Every request but /_log is recorded; GET /_log returns them as JSON.
"""
import hashlib
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")
CONFIG = {}
LOG = []
LOCK = threading.Lock()
CUT_DONE = set()


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: the tests read /_log
        pass

    def send(self, status, headers, body=b"", head=False, length=None):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def error(self, status, code, message, head):
        self.send(status, {"X-Error-Code": code, "X-Error-Message": message}, message.encode(), head)

    def record(self):
        url = urllib.parse.urlsplit(self.path)
        with LOCK:
            LOG.append({"method": self.command, "path": url.path, "host": self.headers.get("Host", ""),
                        "authorization": self.headers.get("Authorization", ""),
                        "range": self.headers.get("Range", "")})
        return url

    def do_HEAD(self):
        self.route(head=True)

    def do_GET(self):
        self.route(head=False)

    def route(self, head):
        if self.path == "/_log":
            with LOCK:
                body = json.dumps(LOG).encode()
            return self.send(200, {"Content-Type": "application/json"}, body)
        url = self.record()
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            return self.listing(parts[2] + "/" + parts[3], "/".join(parts[5:]), head)
        if len(parts) >= 4 and parts[0] == "cdn":
            return self.cdn(parts[1] + "/" + parts[2], "/".join(parts[3:]), head)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]), head)
        self.error(404, "", "no such route", head)

    def repo(self, name, revision, head):
        repo = CONFIG["repos"].get(name)
        if repo is None:
            self.error(401, "RepoNotFound", "Repository not found", head)
            return None
        if revision not in ("main", repo["commit"]):
            self.error(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
            return None
        return repo

    def listing(self, name, revision, head):
        if self.moved(name):
            return
        repo = self.repo(name, revision, head)
        if repo is not None:
            body = json.dumps({"id": name, "sha": repo["commit"],
                               "siblings": [{"rfilename": f} for f in sorted(repo["files"])]}).encode()
            self.send(200, {"Content-Type": "application/json"}, body, head)

    def moved(self, name):
        """A renamed repository: the Hub answers with a relative redirect to the new name."""
        target = CONFIG["repos"].get(name, {}).get("moved_to")
        if target is None:
            return False
        self.send(307, {"Location": self.path.replace("/" + name + "/", "/" + target + "/", 1)}, b"")
        return True

    def resolve(self, name, revision, path, head):
        if self.moved(name):
            return
        repo = self.repo(name, revision, head)
        if repo is None:
            return
        if repo.get("gated"):
            status = 403 if self.headers.get("Authorization") else 401
            # The message quotes the credentials back, as a careless mirror might: the client
            # must not repeat them.
            sent = self.headers.get("Authorization", "none")
            return self.error(status, "GatedRepo", "Access to model %s is restricted (sent: %s)." % (name, sent), head)
        if path not in repo["files"]:
            return self.error(404, "EntryNotFound", path + " does not exist", head)
        data = read(repo["files"][path])
        headers = {"X-Repo-Commit": repo["commit"]}
        if path.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            port = self.server.server_address[1]
            size = repo.get("announce_size", {}).get(path, len(data))
            headers.update({"X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(size), "ETag": '"%s"' % sha,
                            "Location": "http://localhost:%d/cdn/%s/%s?sig=cdn-signature" % (port, name, path)})
            return self.send(302, headers, b"", head)
        git_sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        headers["ETag"] = '"%s"' % git_sha1
        self.send(200, headers, data, head)

    def cdn(self, name, path, head):
        repo = CONFIG["repos"][name]
        data = bytearray(read(repo["files"][path]))
        if path in repo.get("corrupt", []):
            data[-1] ^= 0xFF
        start = 0
        rng = self.headers.get("Range", "")
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        status = 200
        if rng.startswith("bytes=") and rng.endswith("-") and path not in repo.get("ignore_range", []):
            start = int(rng[6:-1])
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = bytes(data[start:])
        cut = repo.get("cut_once", {}).get(path)
        key = name + "/" + path
        if cut is not None and key not in CUT_DONE and not head:
            with LOCK:
                CUT_DONE.add(key)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the connection cut mid-file
            return
        self.send(status, headers, body, head)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client closing its end after a cut connection is part of the tests, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    global CONFIG
    with open(sys.argv[1]) as f:
        CONFIG = json.load(f)
    server = Server(("127.0.0.1", 0), Hub)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
