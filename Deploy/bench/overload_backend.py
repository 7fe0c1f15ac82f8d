#!/usr/bin/env python3
"""The slow backend of `make bench-overload`: HTTP/1.1 keep-alive on 127.0.0.1:PORT, every
request served in SERVICE_MS milliseconds in one of SLOTS slots (a thread pool: with every slot
busy a request waits its turn), answering 200 "ok". `GET /health` answers at once. It counts the
most requests it ever had at once (waiting included) and prints it on SIGTERM.
"""
import argparse
import asyncio
import signal

peak = 0
current = 0


async def handle(reader, writer, slots, service):
    global peak, current
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0]
            if b" /health " not in line:
                current += 1
                peak = max(peak, current)
                async with slots:
                    await asyncio.sleep(service)
                current -= 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slots", type=int, default=10)
    parser.add_argument("--service-ms", type=float, default=50)
    options = parser.parse_args()
    slots = asyncio.Semaphore(options.slots)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, slots, options.service_ms / 1000), "127.0.0.1", options.port, backlog=1024
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    print(f"peak_concurrent={peak}", flush=True)


asyncio.run(main())
