#!/usr/bin/env python3
"""Open-loop HTTP/1.1 load for `make bench-overload`: RATE requests/s for DURATION seconds over
CONNECTIONS keep-alive connections to 127.0.0.1:PORT, each request `GET PATH`, the connections'
send times interleaved at the fixed rate. A connection still waiting for an answer sends late
(counted when more than one period late: the offered rate was not reached). Latency is from the
send to the whole answer, kept per status; the report is JSON.

Standard library only (asyncio); every loop is bounded by DURATION and stops by itself.
"""
import argparse
import asyncio
import json
import time


async def one_connection(index, options, start, end, results, counts):
    """Connection `index` of C sends at start + (index + k*C) / RATE for k = 0, 1, ...: together
    the fixed rate. A send time that passed while the previous answer was awaited is taken at
    once, and counted late when it is more than one period (C / RATE) behind."""
    # Each connection from its own loopback address: the gateway caps connections per client.
    source = f"127.30.{index // 250}.{index % 250 + 1}"
    reader, writer = await asyncio.open_connection("127.0.0.1", options.port, local_addr=(source, 0))
    request = f"GET {options.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    period = options.connections / options.rate
    send_at = start + index / options.rate
    try:
        while send_at < end and time.monotonic() < end:
            now = time.monotonic()
            if send_at > now:
                await asyncio.sleep(send_at - now)
            elif now - send_at > period:
                counts["late"] += 1
            started = time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            took = time.monotonic() - started
            key = str(status)
            if status == 503 and b'"shed":"' in body:
                key = "503-" + body.split(b'"shed":"')[1].split(b'"')[0].decode()
            results.setdefault(key, []).append(took)
            counts["sent"] += 1
            send_at += period
    finally:
        writer.close()


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, int(fraction * len(ordered)))
    return ordered[index]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=1000)
    options = parser.parse_args()

    results = {}
    counts = {"sent": 0, "late": 0}
    start = time.monotonic() + 0.5
    end = start + options.duration
    outcomes = await asyncio.gather(
        *(one_connection(index, options, start, end, results, counts) for index in range(options.connections)),
        return_exceptions=True,
    )
    errors = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    elapsed = time.monotonic() - start
    report = {"sent": counts["sent"], "late": counts["late"], "errors": errors[:5], "elapsed_s": round(elapsed, 3), "by_status": {}}
    for key, values in sorted(results.items()):
        report["by_status"][key] = {
            "count": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 3),
            "p99_ms": round(percentile(values, 0.99) * 1000, 3),
            "max_ms": round(max(values) * 1000, 3),
        }
    print(json.dumps(report))


asyncio.run(main())
