#!/usr/bin/env python3
"""The lab's small HTTP service: the "application" of the demo and the group
failover tests. It keeps files in a directory on the replicated filesystem.

  lab-http.py start DIR ADDR PORT PIDFILE   serve DIR in the background; returns once listening
  lab-http.py stop PIDFILE                  stop it (TERM, then KILL) and wait
  lab-http.py monitor PIDFILE ADDR PORT     exit 0 if it answers, 7 (OCF_NOT_RUNNING) if stopped
  lab-http.py put ADDR PORT NAME            client: store stdin as NAME (exit 0 once acknowledged)
  lab-http.py get ADDR PORT NAME            client: print NAME

PUT /NAME stores the body durably (written, fsynced, renamed, directory
fsynced) before the 201 reply, so an acknowledged PUT survives a failover.
GET /NAME returns it; GET /healthz answers "ok" after checking DIR is
readable.
"""

import http.server
import os
import signal
import socket
import sys
import time


def serve(root, addr, port, pidfile, ready_fd):
    root = os.path.abspath(root)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def path_of(self):
            name = self.path.lstrip("/")
            if not name or "/" in name or name.startswith("."):
                self.send_error(400, "bad name")
                return None
            return os.path.join(root, name)

        def do_GET(self):
            if self.path == "/healthz":
                os.listdir(root)
                body = b"ok\n"
            else:
                p = self.path_of()
                if p is None:
                    return
                try:
                    with open(p, "rb") as f:
                        body = f.read()
                except FileNotFoundError:
                    self.send_error(404)
                    return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):
            p = self.path_of()
            if p is None:
                return
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            tmp = p + ".tmp"
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, p)
            d = os.open(root, os.O_RDONLY)
            try:
                os.fsync(d)
            finally:
                os.close(d)
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True

    srv = Server((addr, port), Handler)
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv.serve_forever()


def netns():
    return os.readlink("/proc/self/ns/net").strip("net:[]")


def node_pidfile(pidfile):
    # Lab nodes share the host's filesystem and PID space: the pidfile and
    # the process are told apart by the node's network namespace.
    return "%s.%s" % (pidfile, netns())


def running(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read())
        if os.readlink("/proc/%d/ns/net" % pid) != os.readlink("/proc/self/ns/net"):
            return None
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def start(root, addr, port, pidfile):
    if running(pidfile):
        return 0
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.chdir(root)  # holds the mountpoint, as a real service does
        try:
            serve(root, addr, int(port), pidfile, w)
        finally:
            os._exit(1)
    os.close(w)
    ok = os.read(r, 1)
    if ok != b"1":
        print("lab-http: the server did not start", file=sys.stderr)
        return 1
    return 0


def stop(pidfile):
    pid = running(pidfile)
    if pid is None:
        return 0
    os.kill(pid, signal.SIGTERM)
    for i in range(100):
        if running(pidfile) is None:
            break
        if i == 50:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    try:
        os.remove(pidfile)
    except FileNotFoundError:
        pass
    return 0


def monitor(pidfile, addr, port):
    if running(pidfile) is None:
        return 7
    try:
        with socket.create_connection((addr, int(port)), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            reply = s.recv(64)
    except OSError as e:
        print("lab-http: %s" % e, file=sys.stderr)
        return 1
    return 0 if reply.startswith(b"HTTP/1.0 200") or reply.startswith(b"HTTP/1.1 200") else 1


def client(method, addr, port, name):
    import http.client
    c = http.client.HTTPConnection(addr, int(port), timeout=5)
    body = sys.stdin.buffer.read() if method == "PUT" else None
    c.request(method, "/" + name, body=body)
    r = c.getresponse()
    data = r.read()
    if r.status not in (200, 201):
        print("lab-http: %s %s: %d %s" % (method, name, r.status, r.reason), file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] in ("start", "stop", "monitor"):
        i = 5 if argv[1] == "start" else 2
        if len(argv) > i:
            argv = argv[:i] + [node_pidfile(argv[i])] + argv[i + 1:]
    if len(argv) >= 2 and argv[1] == "start" and len(argv) == 6:
        return start(*argv[2:])
    if len(argv) == 3 and argv[1] == "stop":
        return stop(argv[2])
    if len(argv) == 5 and argv[1] == "monitor":
        return monitor(*argv[2:])
    if len(argv) == 5 and argv[1] in ("put", "get"):
        try:
            return client(argv[1].upper(), *argv[2:])
        except OSError as e:
            print("lab-http: %s" % e, file=sys.stderr)
            return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
