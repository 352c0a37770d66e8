#!/usr/bin/env python3
"""Binary traffic that is not WebSocket, for midsession-binary (midsession.sh).

  binary.py serve PORT            a server that sends random bytes in random-sized bursts
  binary.py talk HOST:PORT        a client that does the same the other way
  binary.py slowget URL           an HTTP(S) GET whose body is read slowly (small receive buffer)

Each runs until killed. Only 127.0.0.1.
"""
import os, random, socket, ssl, sys, threading, time
from urllib.parse import urlsplit


def chatter(s, interval):
    def reader():
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    threading.Thread(target=reader, daemon=True).start()
    while True:
        s.sendall(os.urandom(random.randint(1, 1400)))
        time.sleep(interval)


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen()
    print("listening on", port, file=sys.stderr, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=chatter, args=(c, 0.15), daemon=True).start()


def talk(addr):
    host, port = addr.rsplit(":", 1)
    chatter(socket.create_connection((host, int(port))), 0.2)


def slowget(url):
    u = urlsplit(url)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port))
    if u.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=u.hostname)
    s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
    while s.recv(512):
        time.sleep(0.05)


if __name__ == "__main__":
    {"serve": lambda a: serve(int(a)), "talk": talk, "slowget": slowget}[sys.argv[1]](sys.argv[2])
