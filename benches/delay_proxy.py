"""A TCP proxy on loopback that delays every chunk by a fixed time in each direction.

Each chunk read from one side is written to the other side `delay` milliseconds after it
arrived, in arrival order. Chunks in flight do not wait for one another, so the proxy adds
latency without limiting throughput. With a 10 ms delay, a client that waits for a reply
pays about 20 ms for it (10 ms for the command, 10 ms for the reply), so a client's elapsed
time divided by 20 ms counts the replies it waited for.

Usage: python3 delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS
Both ports are on 127.0.0.1. The proxy runs until it is killed.
"""

import asyncio
import sys

LOOPBACK = "127.0.0.1"
CHUNK_SIZE = 65536


async def forward(reader, writer, delay):
    """Copy chunks from reader to writer, each `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read_chunks():
        try:
            while True:
                chunk = await reader.read(CHUNK_SIZE)
                queue.put_nowait((loop.time() + delay, chunk))
                if not chunk:
                    return
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + delay, b""))

    reading = asyncio.ensure_future(read_chunks())
    try:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        return
    finally:
        reading.cancel()


async def handle(client_reader, client_writer, upstream_port, delay):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, upstream_port)
    except OSError as error:
        print(f"delay_proxy: connecting to {LOOPBACK}:{upstream_port} failed: {error}",
              file=sys.stderr)
        client_writer.close()
        return
    await asyncio.gather(
        forward(client_reader, upstream_writer, delay),
        forward(upstream_reader, client_writer, delay),
    )
    for writer in (client_writer, upstream_writer):
        writer.close()


async def serve(listen_port, upstream_port, delay):
    server = await asyncio.start_server(
        lambda reader, writer: handle(reader, writer, upstream_port, delay),
        LOOPBACK,
        listen_port,
    )
    async with server:
        await server.serve_forever()


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS")
    listen_port, upstream_port, delay_ms = (int(value) for value in sys.argv[1:])
    asyncio.run(serve(listen_port, upstream_port, delay_ms / 1000.0))


if __name__ == "__main__":
    main()
