"""A TCP proxy that adds a round-trip time: every chunk, in either direction, is passed
on rtt/2 after it arrived (order kept; no bandwidth limit). TLS passes through it
untouched, so clients still verify the server's certificate for localhost/127.0.0.1.

    python bench/rtt_proxy.py TARGET_PORT RTT_MS

listens on a free port of 127.0.0.1, prints {"port": ...} as one JSON line and stops
when stdin closes.
"""

import asyncio
import json
import sys


async def pipe(reader, writer, delay):
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, chunk))
            if not chunk:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        writer.close()


async def serve(target_port, rtt_ms):
    delay = rtt_ms / 2000

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, server_writer, delay),
            pipe(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
    server.close()


def main():
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2])))


if __name__ == "__main__":
    main()
