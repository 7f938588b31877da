"""The generated sections of docs/benchmarks.md: the table, the ratios to direct and to LiteLLM, the targets."""

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from bench.load import LoadResult
from bench.scenarios import (
    ONE_CHUNK_1,
    ONE_CHUNK_16,
    ONE_WALLET,
    STREAM_64,
    STREAM_256,
    TOKENS_50,
    Measured,
    Side,
)

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SOAK_BEGIN, SOAK_END = "<!-- soak:begin -->", "<!-- soak:end -->"
CREDITGATE, LITELLM = "creditgate", "LiteLLM"
CAPACITY = 100 * (os.cpu_count() or 1)  # percent of one core, for "X % of 200 %"


def _cost(value: float | None, stream: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} µs/chunk" if stream else f"{value:.2f} ms/gen"


def _row(label: str, r: LoadResult, cpu: str = "-", cost: str = "-", rss: str = "-") -> str:
    chunks = f"{r.chunks_per_s:,.0f}" if r.stream else "-"
    lat, ttfb = r.latency_ms, r.ttfb_ms
    ttfb_cells = f"{ttfb['p50']:.1f} | {ttfb['p99']:.1f}" if r.stream else "- | -"
    return (
        f"| {label} | {r.completed_per_s:,.0f} | {chunks} | {lat['p50']:.1f} | {lat['p99']:.1f} | {ttfb_cells} "
        f"| {r.errors} | {cpu} | {cost} | {rss} |"
    )


def _added(name: str, side: Side, direct: LoadResult, label: str) -> str:
    g = side.load
    chunks = f"x{g.chunks_per_s / direct.chunks_per_s:.2f}" if g.stream and direct.chunks_per_s else ""
    ttfb = (
        f"+{g.ttfb_ms['p50'] - direct.ttfb_ms['p50']:.1f} | +{g.ttfb_ms['p99'] - direct.ttfb_ms['p99']:.1f}"
        if g.stream
        else " | "
    )
    return (
        f"| {label} · {name} vs direct | x{g.completed_per_s / direct.completed_per_s:.2f} | {chunks} "
        f"| +{added_p(side, direct, 'p50'):.1f} | +{added_p(side, direct, 'p99'):.1f} | {ttfb} | "
        f"| machine {side.machine_percent:.0f} % busy | | |"
    )


def added_p(side: Side, direct: LoadResult, p: str) -> float:
    return side.load.latency_ms[p] - direct.latency_ms[p]


def table(results: list[Measured]) -> list[str]:
    lines = [
        "| scenario · target | gen/s | chunks/s | latency p50 ms | p99 ms | TTFB p50 ms | TTFB p99 ms | errors "
        "| CPU % | CPU cost | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        s = m.scenario
        lines.append(_row(f"{s.name} · direct", m.direct))
        for name, side in m.sides.items():
            cost = _cost(side.cpu_cost(s.stream), s.stream)
            rss = f"{side.rss_peak_kib / 1024:.0f}"
            lines.append(_row(f"{s.name} · {name}", side.load, f"{side.cpu_percent:.0f}", cost, rss))
            lines.append(_added(name, side, m.direct, s.name))
    return lines


def side_by_side(results: list[Measured]) -> list[str]:
    """creditgate's CPU cost and added latency as ratios to LiteLLM's, scenario by scenario."""
    rows = [m for m in results if LITELLM in m.sides and CREDITGATE in m.sides]
    if not rows:
        return []
    lines = [
        "| scenario | creditgate CPU cost | LiteLLM CPU cost | creditgate / LiteLLM | added p50 ms creditgate "
        "| LiteLLM | errors creditgate | LiteLLM | RSS MiB creditgate | LiteLLM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        ours, theirs, stream = m.sides[CREDITGATE], m.sides[LITELLM], m.scenario.stream
        a, b = ours.cpu_cost(stream), theirs.cpu_cost(stream)
        ratio = f"{a / b:.2f}" if a is not None and b else "-"
        lines.append(
            f"| {m.scenario.name} | {_cost(a, stream)} | {_cost(b, stream)} | {ratio} "
            f"| +{added_p(ours, m.direct, 'p50'):.1f} | +{added_p(theirs, m.direct, 'p50'):.1f} "
            f"| {ours.load.errors} | {theirs.load.errors} "
            f"| {ours.rss_peak_kib / 1024:.0f} | {theirs.rss_peak_kib / 1024:.0f} |"
        )
    return lines


def _verdict(met: bool, what: str, why: str) -> str:
    return f"- **{'met' if met else 'missed'}** — {what}" + ("" if met else f" {why}")


def _context(side: Side) -> str:
    return (
        f"creditgate used {side.cpu_percent:.0f} % CPU of {CAPACITY} % while the machine was "
        f"{side.machine_percent:.0f} % busy."
    )


def _peer(m: Measured, figure: Callable[[Side], str]) -> str:
    return f" (LiteLLM: {figure(m.sides[LITELLM])})" if LITELLM in m.sides else ""


def verdicts(results: dict[str, Measured], billed: int, unsettled: int) -> list[str]:
    """One line per SPEC §10 target whose scenarios ran: met or missed, with the measured figure."""
    ours = {name: m.sides[CREDITGATE] for name, m in results.items() if CREDITGATE in m.sides}
    lines = []
    streams = [results[s.name] for s in (STREAM_64, STREAM_256) if s.name in ours]
    if streams:
        costs = {m.scenario.concurrency: m.sides[CREDITGATE].cpu_per_chunk_us() or 0.0 for m in streams}
        figures = ", ".join(
            f"c{m.scenario.concurrency} {costs[m.scenario.concurrency]:.0f} µs"
            + _peer(m, lambda s: f"{s.cpu_per_chunk_us() or 0:.0f} µs")
            for m in streams
        )
        lines.append(
            _verdict(
                max(costs.values()) <= 40,
                f"relaying a stream (50 chunks x 5 ms, two workers): creditgate CPU per relayed chunk {figures} "
                "(≤ 40 µs).",
                _context(streams[-1].sides[CREDITGATE]),
            )
        )
    if (side := ours.get(ONE_CHUNK_16.name)) is not None:
        cost = side.cpu_per_generation_ms() or 0.0
        lines.append(
            _verdict(
                cost <= 2 and unsettled == 0,
                f"non-stream, one-chunk upstream, c16: {cost:.2f} ms of creditgate CPU per billed generation (≤ 2)"
                + _peer(results[ONE_CHUNK_16.name], lambda s: f"{s.cpu_per_generation_ms() or 0:.2f} ms, unbilled")
                + f"; {billed:,} generations pre-charged and settled in PostgreSQL over the whole run, {unsettled} "
                "left unsettled.",
                _context(side),
            )
        )
    if (side := ours.get(TOKENS_50.name)) is not None:
        cost = side.cpu_per_generation_ms() or 0.0
        lines.append(
            _verdict(
                cost <= 3,
                f"non-stream, 50-token answer (50 upstream chunks), c16: {cost:.2f} ms of creditgate CPU per billed "
                "generation (≤ 3)"
                + _peer(results[TOKENS_50.name], lambda s: f"{s.cpu_per_generation_ms() or 0:.2f} ms, unbilled")
                + ".",
                _context(side),
            )
        )
    if (side := ours.get(ONE_CHUNK_1.name)) is not None:
        m = results[ONE_CHUNK_1.name]
        p50, p99 = added_p(side, m.direct, "p50"), added_p(side, m.direct, "p99")
        lines.append(
            _verdict(
                p50 <= 3 and p99 <= 6,
                f"concurrency 1, one-chunk upstream: added latency +{p50:.1f} ms p50 (≤ 3), +{p99:.1f} ms p99 (≤ 6)"
                + _peer(m, lambda s: f"+{added_p(s, m.direct, 'p50'):.1f} / +{added_p(s, m.direct, 'p99'):.1f} ms")
                + ".",
                f"creditgate took {side.load.latency_ms['p50']:.1f} ms p50 against {m.direct.latency_ms['p50']:.1f} "
                f"direct; the machine was {side.machine_percent:.0f} % busy.",
            )
        )
    if (side := ours.get(STREAM_256.name)) is not None:
        m = results[STREAM_256.name]
        ttfb = side.load.ttfb_ms["p50"] - m.direct.ttfb_ms["p50"]
        first = f" First error: `{side.load.first_error[:200]}`." if side.load.first_error else ""
        lines.append(
            _verdict(
                side.load.errors == 0 and ttfb <= 50,
                f"256 concurrent streams on two workers: {side.load.errors} errors (0), time to first byte "
                f"+{ttfb:.1f} ms p50 over direct (≤ 50)"
                + _peer(
                    m, lambda s: f"{s.load.errors} errors, +{s.load.ttfb_ms['p50'] - m.direct.ttfb_ms['p50']:.1f} ms"
                )
                + ".",
                _context(side) + first,
            )
        )
        per_stream = (side.rss_peak_kib - side.rss_before_kib) / STREAM_256.concurrency
        lines.append(
            _verdict(
                per_stream <= 64,
                f"memory: {per_stream:.0f} KiB per open stream (≤ 64; peak RSS of the creditgate processes during "
                "256 streams minus their RSS just before)"
                + _peer(m, lambda s: f"{(s.rss_peak_kib - s.rss_before_kib) / STREAM_256.concurrency:.0f} KiB")
                + ". Flat over 5 minutes: see the soak below.",
                "Missed.",
            )
        )
    if (one := ours.get(ONE_WALLET.name)) is not None and (spread := ours.get(ONE_CHUNK_16.name)) is not None:
        ratio = one.load.completed_per_s / spread.load.completed_per_s
        lines.append(
            _verdict(
                ratio >= 0.8,
                f"one user's wallet under concurrency 16: {one.load.completed_per_s:,.0f} generations/s, {ratio:.0%} "
                f"of the {spread.load.completed_per_s:,.0f}/s of the same load over 16 users (≥ 80 %).",
                f"With one user creditgate used {one.cpu_percent:.0f} % CPU of {CAPACITY} %, with 16 users "
                f"{spread.cpu_percent:.0f} %: the rest of the time its generations waited on that user's wallet row.",
            )
        )
    return lines


def soak_section(side: Side, direct: LoadResult) -> list[str]:
    series, load = side.rss_series, side.load
    minute = [rss for t, rss in series if t <= 60] or [side.rss_before_kib]
    last = [rss for t, rss in series if t >= series[-1][0] - 60] if series else [side.rss_before_kib]
    growth = (sum(last) / len(last) - sum(minute) / len(minute)) / 1024
    flat = growth <= 0.05 * sum(minute) / len(minute) / 1024 + 2
    points = ", ".join(f"{t:.0f} s: {rss / 1024:.0f}" for t, rss in series[:: max(1, len(series) // 10)])
    return [
        f"{SOAK_BEGIN}",
        f"Soak (`make soak`, measured {time.strftime('%Y-%m-%d')}): 256 concurrent streams (50 chunks x 5 ms) through "
        f"two workers for {load.duration_s:.0f} s; {load.requests:,} streams, {load.errors} errors"
        + (f" (first: `{load.first_error[:160]}`)" if load.first_error else "")
        + f", chunk rate {load.chunks_per_s:,.0f}/s (direct: {direct.chunks_per_s:,.0f}/s).",
        "",
        f"- RSS of the creditgate processes (MiB) — {points}.",
        f"- First minute {sum(minute) / len(minute) / 1024:.1f} MiB on average, last minute "
        f"{sum(last) / len(last) / 1024:.1f} MiB: growth {growth:+.1f} MiB → **{'flat' if flat else 'growing'}**.",
        f"{SOAK_END}",
    ]


def splice(path: Path, begin: str, end: str, lines: list[str]) -> None:
    """Replace the generated region of docs/benchmarks.md; the hand-written analysis around it stays."""
    block = "\n".join(lines) if lines[0] == begin else "\n".join([begin, *lines, end])
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n\n{SOAK_BEGIN}\n{SOAK_END}\n"
    head, found, rest = text.partition(begin)
    if not found:
        path.write_text(text.rstrip("\n") + "\n\n" + block + "\n")
        return
    _, _, tail = rest.partition(end)
    path.write_text(head + block + tail)


def machine_facts() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"
