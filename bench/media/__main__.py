"""heron's media bridge against rtpengine steered by Kamailio: N WebRTC ⇄ RTP calls at once.

Run from the repository root::

    .venv/bin/python -m bench.media            # 20 calls, 30 s of steady media
    .venv/bin/python -m bench.media --quick    # 4 calls, 8 s: a smoke check
    .venv/bin/python -m bench.media --help     # --calls, --seconds, --servers, --keep

For each server, one after the other: the proxy and its bridge start, a sipp UAS (the
plain-RTP desk phone) answers every call with PCMA and plays sip-tester's g711a.pcap to the
bridge until the BYE, and N aiortc peer connections (the WebRTC side, one process) call it
through the proxy at once, offering UDP/TLS/RTP/SAVPF over SIP/UDP; after ``--seconds`` of
media every call is hung up. The same calls, the same pcap, the same aiortc clients for both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.media.pcap import SOURCE, extend
from bench.media.servers import CALLER, DESK, DOMAIN, Bridged, Heron, Kamailio, missing_tools
from bench.media.uac import Caller
from bench.media.webrtc import WebCall, hang_up, packets, place
from bench.proc import (
    Address,
    ServerUnavailable,
    busy_cores,
    cpu_seconds,
    free_port,
    machine_ticks,
    stop_process,
    tree_cpu,
    wait_ready,
)
from bench.report import (
    Row,
    common_options,
    emit,
    plan_from,
    plan_options,
    run_directory,
    server_order,
    table,
)

SCENARIO = Path(__file__).parent / "scenarios" / "uas_pcap.xml"
SETUP_SECONDS = 90.0
"""Stream the desk phone plays beyond the steady window: for the calls' set-up and BYEs."""


@dataclass(frozen=True)
class Plan:
    calls: int
    seconds: float


QUICK = Plan(calls=4, seconds=8.0)
DEFAULT = Plan(calls=20, seconds=30.0)


@dataclass
class Result:
    calls_ok: int = 0
    failures: list[str] = field(default_factory=list)
    phase_seconds: float = 0.0
    relayed: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    """Server CPU seconds over the whole call phase (INVITEs to BYEs), by process tree."""
    window_cpu: dict[str, float] = field(default_factory=dict)
    window_seconds: float = 0.0
    window_received: int = 0
    window_sent: int = 0
    machine_cores: float = 0.0
    dropped: str = ""
    client_cores: float = 0.0
    """The aiortc clients' (this process's) CPU in the steady window, in cores."""

    @property
    def server_cpu(self) -> float:
        return sum(self.cpu.values())

    def describe(self) -> str:
        trees = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.cpu.items())
        window = ", ".join(
            f"{name} {100 * s / self.window_seconds:.0f} %" for name, s in self.window_cpu.items()
        )
        return (
            f"{self.calls_ok} calls up; {self.relayed:,} packets relayed in "
            f"{self.phase_seconds:.1f} s ({self.dropped}); server CPU {trees}; in the steady "
            f"{self.window_seconds:.1f} s: {window} of a core, aiortc received "
            f"{self.window_received:,} and sent {self.window_sent:,} packets at "
            f"{self.client_cores:.2f} cores; machine {self.machine_cores:.1f} cores busy"
        )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.media", description=(__doc__ or "").split("\n")[0]
    )
    common_options(parser, quick="4 calls for 8 s: a smoke check", reference="kamailio")
    plan_options(parser, DEFAULT)
    return parser.parse_args(argv)


def _listening_udp(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextmanager
def desk_phone(workdir: Path, address: Address, media_port: int, seconds: float) -> Iterator[None]:
    """The sipp UAS answering every call and playing ``seconds`` of one continuous stream
    made from g711a.pcap (``pcap.extend``), until the block ends."""
    stream = workdir / "stream.pcap"
    length_ms = extend(stream, seconds)
    scenario = workdir / SCENARIO.name
    text = SCENARIO.read_text().replace(str(SOURCE), str(stream))
    scenario.write_text(text.replace('timeout="7000"', f'timeout="{length_ms:.0f}"'))
    log = workdir / "sipp.log"
    command = [
        "sipp", "-sf", str(scenario), "-i", address[0], "-p", str(address[1]),
        "-mi", "127.0.0.1", "-mp", str(media_port), "-nostdin", "-trace_err",
        "-error_file", str(workdir / "sipp-errors.log"),
    ]  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(process, lambda: _listening_udp(address[1]), 20.0, log)
        yield
    finally:
        stop_process(process)


async def _load(bridged: Bridged, plan: Plan) -> Result:
    result = Result()
    loop = asyncio.get_running_loop()
    user, password = CALLER
    transport, caller = await loop.create_datagram_endpoint(
        lambda: Caller(bridged.address, user, password, DOMAIN), local_addr=("127.0.0.1", 0)
    )
    relayed = bridged.relayed
    roots = bridged.pids
    try:
        relayed_before = await asyncio.to_thread(relayed)
        cpu_before = {name: tree_cpu([pid]) for name, pid in roots.items()}
        started = time.monotonic()
        placed = await asyncio.gather(
            *(place(caller, DESK) for _ in range(plan.calls)), return_exceptions=True
        )
        calls = [call for call in placed if isinstance(call, WebCall)]
        result.failures = [repr(failure) for failure in placed if isinstance(failure, Exception)]
        result.calls_ok = len(calls)
        # Steady media: every call up, nothing but packets.
        counts = [await packets(call) for call in calls]
        window_cpu = {name: tree_cpu([pid]) for name, pid in roots.items()}
        ticks, window_start, client = machine_ticks(), time.monotonic(), time.process_time()
        await asyncio.sleep(plan.seconds)
        result.window_seconds = time.monotonic() - window_start
        result.client_cores = (time.process_time() - client) / result.window_seconds
        result.machine_cores = busy_cores(ticks, machine_ticks(), result.window_seconds)
        result.window_cpu = {
            name: cpu_seconds(window_cpu[name], tree_cpu([pid])) for name, pid in roots.items()
        }
        ends = [await packets(call) for call in calls]
        result.window_received = sum(e[0] - b[0] for b, e in zip(counts, ends, strict=True))
        result.window_sent = sum(e[1] - b[1] for b, e in zip(counts, ends, strict=True))
        statuses = await asyncio.gather(
            *(hang_up(caller, call) for call in calls), return_exceptions=True
        )
        result.failures += [f"BYE: {s!r}" for s in statuses if s != 200]
        result.phase_seconds = time.monotonic() - started
        result.cpu = {
            name: cpu_seconds(cpu_before[name], tree_cpu([pid])) for name, pid in roots.items()
        }
        result.relayed = await asyncio.to_thread(relayed) - relayed_before
        result.dropped = await asyncio.to_thread(bridged.dropped)
    finally:
        transport.close()
    return result


def _rows(results: dict[str, Result | None], plan: Plan) -> list[Row]:
    heron, reference = results.get("heron"), results.get("kamailio")

    def figure(pick: Callable[[Result], float]) -> tuple[float | None, float | None]:
        return (
            pick(heron) if heron else None,
            pick(reference) if reference else None,
        )

    def per_packet(result: Result) -> float:
        return 1e6 * result.server_cpu / result.relayed if result.relayed else float("nan")

    def steady(result: Result) -> float:
        return 100 * sum(result.window_cpu.values()) / result.window_seconds

    return [
        ("calls bridged", *figure(lambda r: r.calls_ok), "{:,.0f}"),
        (
            "relayed packets/s (call phase)",
            *figure(lambda r: r.relayed / r.phase_seconds),
            "{:,.0f}",
        ),
        ("server CPU us per relayed packet", *figure(per_packet), "{:,.1f}"),
        ("server CPU % of a core, steady media", *figure(steady), "{:,.1f}"),
        (
            "packets/s the WebRTC side received, steady",
            *figure(lambda r: r.window_received / r.window_seconds),
            "{:,.0f}",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = plan_from(args, QUICK, DEFAULT)
    order = server_order(args, "kamailio")
    if plan.calls < 1 or plan.seconds <= 0:
        raise SystemExit("--calls must be at least 1 and --seconds above 0")
    if "sip-tester" in missing_tools():
        raise SystemExit("sipp not found: apt-get install sip-tester")
    emit(f"{plan.calls} calls at once, {plan.seconds:g} s of steady media; {os.cpu_count()} cores")
    results: dict[str, Result | None] = {}
    taken: set[int] = set()
    uas: Address = ("127.0.0.1", free_port(taken))
    uas_media = free_port(taken)
    with run_directory("bench-media-", args.keep) as workdir:
        makers: dict[str, Callable[[], Heron | Kamailio]] = {
            "heron": lambda: Heron(workdir / "heron", taken, uas),
            "kamailio": lambda: Kamailio(workdir / "kamailio", taken, uas),
        }
        for name in order:
            server = makers[name]()
            emit(f"{name}: setting up")
            try:
                server.prepare()
                with (
                    server.running() as bridged,
                    desk_phone(server.workdir, uas, uas_media, plan.seconds + SETUP_SECONDS),
                ):
                    emit(f"  ({name} on {bridged.address[0]}:{bridged.address[1]}, {bridged.pids})")
                    result = asyncio.run(_load(bridged, plan))
            except ServerUnavailable as exc:
                emit(f"{name}: SKIPPED, {exc}")
                results[name] = None
                continue
            results[name] = result
            emit(f"  {name}: {result.describe()}")
            for failure in result.failures[:5]:
                emit(f"  {name}: failed: {failure}")
    emit()
    legend = (
        f"{plan.calls} WebRTC (aiortc, PCMA) <-> RTP (sipp, g711a.pcap) calls at once. "
        "Relayed packets: heron's media.counters (packets from either side), rtpengine's "
        "'Total relayed packets' (userspace, --table=-1). Server CPU: heron's process; "
        "Kamailio's and rtpengine's trees together."
    )
    emit(table("kamailio", _rows(results, plan), legend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
