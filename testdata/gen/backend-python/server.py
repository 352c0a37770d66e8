"""A Python "websockets" server on a unix socket, for production.sh: echoes
every message. websockets answers a request that is not an upgrade with 426
and a body that names the header it missed.

    /usr/bin/python3 server.py /path/app.sock   (Debian's python3-websockets)
"""
import asyncio
import os
import sys

import websockets


async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)


async def main(path):
    async with websockets.unix_serve(echo, path):
        os.chmod(path, 0o666)  # nginx's workers run as nobody
        print("websockets %s listening on unix:%s" % (websockets.__version__, path), file=sys.stderr, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
