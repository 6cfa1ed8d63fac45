#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed time in each direction (scripts/bench-latency.sh).

    delay-proxy.py LISTEN_PORT TARGET_PORT ONE_WAY_DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT and forwards each connection to 127.0.0.1:TARGET_PORT; what
arrives on either side is written to the other ONE_WAY_DELAY_MS later, in order. For measuring a
cluster whose NATS server is a network hop away on one machine (the kernel's netem is not always
there).
"""
import asyncio
import sys

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000.0


async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            arrived, data = await queue.get()
            if data is None:
                writer.close()
                return
            wait = arrived + DELAY - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time(), data or None))
            if not data:
                break
    except (ConnectionError, OSError):
        queue.put_nowait((loop.time(), None))
    await sender


async def handle(reader, writer):
    target_reader, target_writer = await asyncio.open_connection("127.0.0.1", TARGET)
    await asyncio.gather(pipe(reader, target_writer), pipe(target_reader, writer), return_exceptions=True)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()


asyncio.run(main())
