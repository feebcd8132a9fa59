"""docs/benchmarks.md, its chart, and the raw numbers as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .harness import HIT_SCENARIOS, MEMORY_CACHE_BYTES, MISS_DELAY_MS, Results, spread, summarize

MIB = 2**20
MIX_GOALS = {10_000: 0.5, 100_000: 0.35}  # issue 17: req/s against nginx, by numbers drawn
TITLES = {
    "image40": "cached hit, image, 40 px",
    "image640": "cached hit, image, 640 px",
    "json640": "cached hit, JSON output=0, 640 px (nginx: the same bytes as a static file)",
    "signed40": "cached hit with a valid sign, image, 40 px (nginx: its plain hit)",
    "fresh40": "cached hit, image, 40 px, every URL new (no kept answer: the full path)",
}


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "–"
    return f"{value / reference:.2f}×"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def _busy(machine: dict[str, str]) -> str | None:
    """A note when the 1-minute load average at the start exceeded the core count. (At the
    end it reflects the benchmark's own load: the server, wrk and the fake on every core.)"""
    cores = int(machine.get("cores") or 1)
    start = machine.get("load average at start")
    if start and float(start.split()[0]) > cores:
        return f"load average {float(start.split()[0]):.1f} on {cores} cores at the start"
    return None


def goals(results: Results) -> list[tuple[str, str, str, bool | None]]:
    """(goal, measured, wanted, met) for every target of the issue that this run measured."""
    medians = summarize(results)
    rows: list[tuple[str, str, str, bool | None]] = []

    def rps(scenario: str, target: str) -> float | None:
        run = medians.get(scenario, {}).get(target)
        return None if run is None else float(run["rps"])

    def ratio_row(goal: str, scenario: str, reference: str, wanted: float) -> None:
        mine, theirs = rps(scenario, "qqavatar"), rps(scenario, reference)
        if mine is not None and theirs:
            rows.append((goal, f"{mine / theirs:.2f}× {reference}", f"≥ {wanted}×",
                         mine / theirs >= wanted))

    ratio_row("cached hit, image 40 px", "image40", "nginx", 0.6)
    ratio_row("cached hit, image 640 px", "image640", "nginx", 0.6)
    ratio_row("cached hit, JSON 640 px", "json640", "nginx", 0.5)
    ratio_row("full hot path with sign vs the floor", "signed40", "floor", 0.85)
    ratio_row("hot path (image 40 px) vs the floor", "image40", "floor", 0.85)
    # What a URL not asked for in the last second costs (issue 17, item 5).
    ratio_row("full path, every URL new (image 40 px) vs the floor", "fresh40", "floor", 0.75)
    half = results.half.get("qqavatar")
    if half:
        rows.append((f"p99 at half of the peak ({half['rps']:.0f} req/s)",
                     f"{half['p99_ms']:.2f} ms", "≤ 5 ms", half["p99_ms"] <= 5))
    miss = results.miss.get("qqavatar")
    if miss and "added_p50_ms" in miss:
        rows.append((f"miss, {MISS_DELAY_MS} ms upstream: added p50",
                     f"{miss['added_p50_ms']:.2f} ms", "≤ 3 ms", miss["added_p50_ms"] <= 3))
    cold = results.cold.get("qqavatar")
    if cold:
        rows.append((f"{cold['requests']} concurrent cold requests",
                     f"{cold['upstream_requests']} upstream", "exactly 1",
                     cold["upstream_requests"] == 1 and cold["answered"] == cold["requests"]))
    memory = results.memory
    if memory:
        rows.append((f"RSS after {memory['avatars']} avatars over the idle baseline",
                     f"+{memory['growth'] / MIB:.1f} MiB", f"≤ {MEMORY_CACHE_BYTES // MIB} MiB",
                     memory["growth"] <= MEMORY_CACHE_BYTES))
    rows += mix_goals(results)
    behind = []
    for scenario in HIT_SCENARIOS:
        mine, flask = rps(scenario, "qqavatar"), rps(scenario, "flask")
        if mine is not None and flask is not None and mine <= flask:
            behind.append(scenario)
    flask_miss = results.miss.get("flask")
    if miss and flask_miss and miss["p50_ms"] >= flask_miss["p50_ms"]:
        behind.append("miss")
    flask_cold = results.cold.get("flask")
    if cold and flask_cold and cold["upstream_requests"] > flask_cold["upstream_requests"]:
        behind.append("cold")
    if any("flask" in per_target for per_target in medians.values()) or flask_miss:
        rows.append(("every scenario ahead of Flask", "behind in " + ", ".join(behind)
                     if behind else "ahead in all measured", "all", not behind))
    return rows


def per_avatar(item: dict[str, Any]) -> tuple[float, float]:
    """RSS growth per cached avatar over the idle server once every avatar is warmed, and
    the bound of issue 17: 1.2× its image bytes + 512 B. (The measured run adds the hot
    tiers, bounded whatever the number of avatars: shown apart.)"""
    memory = item["memory"]
    held = max(1, min(item["avatars"], memory["cached"] or item["avatars"]))
    mean_image = memory["image_bytes"] / max(1, item["avatars"])
    return (memory["warm_rss"] - memory["idle_rss"]) / held, 1.2 * mean_image + 512


def mix_goals(results: Results) -> list[tuple[str, str, str, bool | None]]:
    """The targets of issue 17 that this run measured."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for key, item in results.mix.items():
        mine, nginx = item["runs"].get("qqavatar"), item["runs"].get("nginx")
        first = key == str(min(int(k) for k in results.mix))
        if mine and nginx:
            wanted = MIX_GOALS.get(item["numbers"], 0.35)
            ratio = mine["rps"] / nginx["rps"]
            rows.append((f"mix over {item['numbers']} numbers, req/s", f"{ratio:.2f}× nginx",
                         f"≥ {wanted}×", ratio >= wanted))
        floor = item["runs"].get("floor")
        if floor and nginx:  # what a Python app on this server gets doing nothing at all
            rows.append((f"mix over {item['numbers']} numbers, the floor's req/s",
                         f"{floor['rps'] / nginx['rps']:.2f}× nginx", "no target", None))
        if mine and floor:
            rows.append((f"mix over {item['numbers']} numbers, req/s against the floor",
                         f"{mine['rps'] / floor['rps']:.2f}× floor", "no target", None))
        if mine:
            rows.append((f"mix over {item['numbers']} numbers, p99", f"{mine['p99_ms']:.2f} ms",
                         "< 5 ms" if first else "no target", mine["p99_ms"] < 5 if first else None))
            rows.append((f"mix over {item['numbers']} numbers, upstream requests in the run",
                         str(mine["upstream_requests"]), "0" if first else "counted",
                         mine["upstream_requests"] == 0 if first else None))
        growth, bound = per_avatar(item)
        rows.append((f"RSS per cached avatar, {item['avatars']} avatars", f"{growth:.0f} B",
                     f"≤ {bound:.0f} B", growth <= bound))
    if results.restart:
        rows.append((f"restart, {results.restart['avatars']} avatars warmed: upstream requests",
                     str(results.restart["upstream_requests"]), "0",
                     results.restart["upstream_requests"] == 0))
    return rows


def _mix_section(results: Results) -> list[str]:
    labels = results.labels
    lines = ["", "## Mix: a real site's load (issue 17)", "",
             "QQ numbers drawn Zipf(1.0), sizes 40/40/100/100/100/140/640, one call in five "
             "`output=0` (nginx: the image); every (number, size) warmed first on both; then "
             "a warm-up pass and `wrk -t1 -c32` over the same drawn list of URLs (bench/mix.py). "
             "qqavatar runs on its defaults (memory tier and disk tier in its data dir), in a "
             "process of its own; nginx is `proxy_cache` with a 1 GiB disk zone. *Upstream* "
             "counts the requests the fake qlogo got during the measured run.", "",
             "How the memory tier's default (`QQAVATAR_CACHE_MAX_BYTES=256MiB`) was chosen: "
             "the memory tier charges an avatar its bytes + 12.5 % + 700 B (measured, see the "
             "memory table below), about 4.2 KB at the mix's mean image of 3.1 KB; 256 MiB "
             "holds the 40 000 avatars of the 10 000-number mix whole (no disk read in the "
             "measured run), and of the 100 000-number mix the most asked ~60 000, the rest "
             "coming from the disk tier. Half of it (128 MiB, the old default) holds 31 000 "
             "of the 40 000, so the least asked fifth would be read from disk; the memory is "
             "each worker's own, while the disk tier's page cache is shared by all.", "",
             "| numbers | avatars | target | req/s | p50 ms | p99 ms | × nginx | upstream |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for item in results.mix.values():
        nginx_rps = item["runs"].get("nginx", {}).get("rps")
        for name, run in item["runs"].items():
            shown = "qqavatar (defaults)" if name == "qqavatar" else labels.get(name, name)
            lines.append(f"| {item['numbers']} | {item['avatars']} | {shown} | {run['rps']:.0f} | "
                         f"{_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | "
                         f"{_ratio(run['rps'], nginx_rps)} | {run['upstream_requests']} |")
    lines += ["", "Memory of qqavatar (RSS of its processes) over the idle server: after "
                  "warming every avatar, and after the measured run, which also fills the "
                  "hot tiers bounded whatever the number of avatars (JSON pieces 4 MiB, kept "
                  "answers 4 MiB, image headers ~1.3 MiB). Per avatar: the growth after "
                  "warming over the avatars the memory tier holds; the bound is 1.2× their "
                  "mean image size + 512 B.", "",
              "| avatars | held in memory | image bytes | idle RSS | after warming | after the run "
              "| per avatar | bound |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for item in results.mix.values():
        memory = item["memory"]
        growth, bound = per_avatar(item)
        mib = [f"{memory[name] / MIB:.1f} MiB"
               for name in ("image_bytes", "idle_rss", "warm_rss", "after_rss")]
        lines.append(f"| {item['avatars']} | {memory['cached']} | {' | '.join(mib)} | "
                     f"{growth:.0f} B | {bound:.0f} B |")
    restart = results.restart
    if restart:
        lines += ["", "Restart: the mix's qqavatar stopped (SIGTERM) and started again on the "
                      "same data dir, then the same list replayed at once (no warm-up pass).", "",
                  "| avatars warmed | files on disk | req/s | p50 ms | p99 ms | upstream |",
                  "|---:|---:|---:|---:|---:|---:|",
                  f"| {restart['avatars']} | {restart['disk_files']} | {restart['rps']:.0f} | "
                  f"{_ms(restart['p50_ms'])} | {_ms(restart['p99_ms'])} | "
                  f"{restart['upstream_requests']} |"]
    return lines


def markdown(results: Results, chart_name: str | None) -> str:
    opts, labels = results.options, results.labels
    medians = summarize(results)
    lines = ["# Benchmarks", ""]
    lines.append("Generated by `python bench/run.py` (docs/operations.md, \"Benchmarks\"); "
                 "re-run it on a quiet machine before quoting these numbers.")
    if opts.get("quick"):
        lines += ["", "**Quick smoke run: durations too short for the numbers to mean anything.**"]
    busy = _busy(results.machine)
    if busy:
        lines += ["", f"**The machine was busy ({busy}): other processes competed for the cores, "
                      "so these numbers, and even their ratios, are not representative.**"]
    lines += ["", "## Machine and versions", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in results.machine.items()]
    hit, miss = opts["hit_load"], opts["miss_load"]
    lines += [
        "", "## How", "",
        f"- Every target runs with {opts['workers']} worker(s), pinned to core "
        f"{opts['server_cpu']}; `wrk` and the fake qlogo run on core {opts['load_cpu']}.",
        f"- qqavatar runs as `qqavatar serve --server {opts['server']}`; the floor is a "
        "do-nothing app on the same server and interface answering the bytes qqavatar answers; "
        "nginx has `proxy_cache` + `proxy_cache_lock` in front of the same fake qlogo; Flask "
        "uses `requests` and `flask-caching` (SimpleCache) under gunicorn (gthread, 8 threads).",
        f"- Cached hits: `wrk -t{hit['threads']} -c{hit['connections']} -d{hit['duration']:g}s`, "
        f"caches warm, {opts['warmup']:g} s of warm-up load, the median of {opts['rounds']} "
        "round(s) by req/s (target order rotated every round).",
        f"- Miss path: every request a new avatar, the fake answering after {MISS_DELAY_MS} ms; "
        f"`wrk -c{miss['connections']} -d{miss['duration']:g}s`; added latency = the target's "
        "percentile minus the fake's own, measured the same way.",
        "", "## Cached hits", "",
        "| scenario | target | req/s | p50 ms | p99 ms | × nginx | × floor | spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in HIT_SCENARIOS:
        per_target = medians.get(scenario)
        if not per_target:
            continue
        nginx_rps = per_target.get("nginx", {}).get("rps")
        floor_rps = per_target.get("floor", {}).get("rps")
        for name, run in per_target.items():
            runs = results.hits[scenario][name]
            lines.append(
                f"| {TITLES[scenario]} | {labels.get(name, name)} | {run['rps']:.0f} | "
                f"{_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | {_ratio(run['rps'], nginx_rps)} | "
                f"{_ratio(run['rps'], floor_rps)} | {spread(runs):.0%} |")
    if results.half:
        lines += ["", "## Steady load at half of qqavatar's peak (image, 40 px)", "",
                  "The run with the median p99 of the rounds; every round's p99 last.", "",
                  "| target | goal req/s | req/s | p50 ms | p99 ms | p99 of each round |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, run in results.half.items():
            each = ", ".join(_ms(value) for value in run.get("p99_runs_ms", [run["p99_ms"]]))
            lines.append(f"| {labels.get(name, name)} | {run['goal_rps']:.0f} | {run['rps']:.0f} | "
                         f"{_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | {each} |")
    if results.miss:
        lines += ["", f"## Miss path, qlogo answering after {MISS_DELAY_MS} ms", "",
                  "| target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, run in results.miss.items():
            lines.append(f"| {labels.get(name, name)} | {run['rps']:.0f} | {_ms(run['p50_ms'])} | "
                         f"{_ms(run['p99_ms'])} | {_ms(run.get('added_p50_ms'))} | "
                         f"{_ms(run.get('added_p99_ms'))} |")
    if results.cold:
        lines += ["", "## Concurrent requests for one cold avatar", "",
                  "| target | requests | upstream requests | answered 200 | slowest ms |",
                  "|---|---:|---:|---:|---:|"]
        for name, item in results.cold.items():
            lines.append(f"| {labels.get(name, name)} | {item['requests']} | "
                         f"{item['upstream_requests']} | {item['answered']} | "
                         f"{item['slowest_ms']:.0f} |")
    memory = results.memory
    if memory:
        lines += ["", "## Memory", "",
                  f"qqavatar with `QQAVATAR_CACHE_MAX_BYTES=64MiB`, {memory['avatars']} distinct "
                  f"40 px avatars requested in {memory['seconds']:.0f} s; RSS of the server's "
                  f"{memory['processes']} process(es).", "",
                  "| idle RSS | RSS after | growth | bound |", "|---:|---:|---:|---:|",
                  f"| {memory['idle_rss'] / MIB:.1f} MiB | {memory['after_rss'] / MIB:.1f} MiB | "
                  f"{memory['growth'] / MIB:+.1f} MiB | {MEMORY_CACHE_BYTES // MIB} MiB |"]
    if results.hotpath:
        lines += ["", "## Python work per cached hit", "",
                  "In-process CPU per call (`python -m bench.hotpath`, best of several rounds): "
                  "qqavatar's RSGI handler with sockets and granian left out. *Kept* is a "
                  "repeated URL answered from its kept answer (web/replies.py); *full path* "
                  "is the same call with kept answers off, as every call is that no kept "
                  "answer serves (the first of its URL in a second, apps with limits, "
                  "sessions).", "",
                  "| scenario | kept µs | full path µs | floor µs |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {item['kept_us']:.2f} | {item['full_us']:.2f} | "
                  f"{item['floor_us']:.2f} |" for name, item in results.hotpath.items()]
    if results.mix or results.restart:
        lines += _mix_section(results)
    rows = goals(results)
    if rows:
        lines += ["", "## Targets of issues 3 and 17", "", "| goal | measured | wanted | met |",
                  "|---|---|---|---|"]
        lines += [f"| {goal} | {measured} | {wanted} | {_verdict(ok)} |"
                  for goal, measured, wanted, ok in rows]
    if results.problems:
        lines += ["", "## Problems during the run", ""]
        lines += [f"- {problem}" for problem in results.problems]
    if chart_name:
        lines += ["", f"![requests per second and miss latency]({chart_name})"]
    return "\n".join(lines) + "\n"


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = summarize(results)
    scenarios = [scenario for scenario in HIT_SCENARIOS if scenario in medians]
    names = list(dict.fromkeys(name for scenario in scenarios for name in medians[scenario]))
    panels = 1 + bool(results.miss)
    figure, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    left = axes[0][0]
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        values = [medians[scenario].get(name, {}).get("rps", 0) for scenario in scenarios]
        left.bar([x + index * width for x in range(len(scenarios))], values, width,
                 label=results.labels.get(name, name))
    left.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(scenarios))],
                    scenarios)
    left.set_ylabel("requests/s (median)")
    left.set_title("Cached hits")
    if names:
        left.legend(fontsize="small")
    if results.miss:
        right = axes[0][1]
        miss_names = list(results.miss)
        xs = range(len(miss_names))
        right.bar([x - 0.2 for x in xs], [results.miss[n]["p50_ms"] for n in miss_names], 0.4,
                  label="p50")
        right.bar([x + 0.2 for x in xs], [results.miss[n]["p99_ms"] for n in miss_names], 0.4,
                  label="p99")
        right.axhline(MISS_DELAY_MS, color="grey", linestyle="--", linewidth=1)
        right.set_xticks(list(xs), miss_names)
        right.set_ylabel("latency, ms")
        right.set_title(f"Miss path, qlogo answering after {MISS_DELAY_MS} ms")
        right.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(results: Results, out_dir: Path, name: str = "benchmarks") -> tuple[Path, Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png, raw = out_dir / f"{name}.md", out_dir / f"{name}.png", out_dir / f"{name}.json"
    chart(results, png)
    md.write_text(markdown(results, png.name))
    raw.write_text(json.dumps(asdict(results), indent=1, default=str) + "\n")
    return md, png, raw
