#!/usr/bin/python3
"""Read-only Git smart-HTTP server for the test bed's checks.

A WSGI shim (standard library only) in front of `git http-backend`, the CGI program Git
ships: every request becomes one http-backend run with the CGI environment, its output
is split into status, headers and body. Serves every repository under ROOT
(GIT_HTTP_EXPORT_ALL); pushes are refused (http-backend allows receive-pack only to
authenticated users, and there are none).

    git-http.py ROOT ADDRESS PORTFILE

Binds ADDRESS on a free port, writes the port number to PORTFILE once it listens,
serves until SIGTERM. The product serves repositories itself later; this is for the checks.
"""
import os
import signal
import socketserver
import subprocess
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HTTP_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 500: "Internal Server Error"}


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):  # one line a request, to stderr (the caller's log)
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def make_app(root):
    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", ""),
        }
        # Git clients send protocol v2 and gzip'd request bodies in these headers.
        for header in ("HTTP_GIT_PROTOCOL", "HTTP_CONTENT_ENCODING"):
            if header in environ:
                env[header] = environ[header]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.stderr:
            sys.stderr.write(proc.stderr.decode(errors="replace").rstrip("\n") + "\n")
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = proc.stdout.partition(b"\n\n")
        status, headers = "200 OK", []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                code = int(value.strip().split()[0])
                status = "%d %s" % (code, HTTP_REASONS.get(code, "Status"))
            elif name:
                headers.append((name.strip(), value.strip()))
        if proc.returncode != 0 and not sep:
            status, headers, payload = "500 Internal Server Error", [("Content-Type", "text/plain")], b"git http-backend failed\n"
        start_response(status, headers)
        return [payload]
    return app


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    root, address, portfile = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = make_server(address, 0, make_app(root), server_class=ThreadingServer, handler_class=QuietHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % server.server_port)
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
