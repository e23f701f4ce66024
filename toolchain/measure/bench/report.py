"""The benchmark report: report.md and report.html (same tables) with three PNG plots, from results.json."""

from __future__ import annotations

import html
import json
from pathlib import Path

from toolchain.core.config import REPO_ROOT
from toolchain.core.fsutil import write_atomic

SCHEMA_PATH = REPO_ROOT / "schemas" / "bench-results.schema.json"
PLOTS = {"latency": "latency.png", "cold_warm": "cold-vs-warm.png", "hybrid": "hybrid-timeline.png"}


def validate_results(results: dict) -> None:
    import jsonschema

    jsonschema.validate(results, json.loads(SCHEMA_PATH.read_text()))


def _f(v, digits: int = 1) -> str:
    return f"{v:,.{digits}f}" if isinstance(v, (int, float)) else "–"


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table; both report formats render these."""
    rt = results["runtimes"]
    out = []
    rows = []
    for name, r in rt.items():
        w, c = r["warm_ms"], r["cold_ms"]
        tp = r.get("throughput_rps", {})
        rows.append(
            [
                name,
                _f(w["median"]),
                _f(w["p95"]),
                _f(w["p99"]),
                _f(results["spread"].get(name), 2),
                _f(c["median"]),
                _f(tp.get("1_worker")),
                _f(tp.get("2_workers")),
                _f(r.get("peak_rss_mb")),
                _f(r.get("artifact_bytes", 0) / 1e6) if r.get("artifact_bytes") else "–",
                _f(r.get("build_s")),
            ]
        )
    out.append(
        (
            "Runtimes",
            [
                "runtime",
                "warm median ms",
                "p95",
                "p99",
                "spread",
                "cold median ms",
                "rps ×1",
                "rps ×2",
                "peak RSS MB",
                "artifact MB",
                "build s",
            ],
            rows,
        )
    )
    out.append(
        (
            "What cold means",
            ["runtime", "cold start", "phases (median ms)"],
            [
                [n, r["cold_is"], ", ".join(f"{k} {_f(v)}" for k, v in r.get("cold_phases_ms", {}).items()) or "–"]
                for n, r in rt.items()
            ],
        )
    )
    out.append(("Ratios (same run)", ["ratio", "value"], [[k, _f(v, 2)] for k, v in results["ratios"].items()]))
    comp = results.get("compute")
    if comp:
        out.append(
            (
                f"Distance to the machine's limit: {comp['macs_per_image'] / 1e6:,.0f} M multiply-accumulates per "
                f"image over the warm median, against one core of {comp['cpu']['model']} ({comp['cpu']['vendor']})",
                ["runtime", "instruction set", "GMAC/s", "core peak GMAC/s", "share of peak"],
                [
                    [
                        n,
                        r["compute"]["instruction_set"],
                        _f(r["compute"]["gmac_per_s"]),
                        _f(r["compute"]["peak_gmac_per_s"]),
                        f"{100 * r['compute']['peak_share']:.1f} %",
                    ]
                    for n, r in rt.items()
                    if "compute" in r
                ],
            )
        )
        out.append(
            (
                "How each peak is derived",
                ["instruction set", "MAC per cycle", "GMAC/s", "derivation"],
                [[k, str(v["macs_per_cycle"]), _f(v["gmac_per_s"]), v["derivation"]] for k, v in comp["peaks"].items()],
            )
        )
    hy = results.get("hybrid", {})
    if "simulation" in hy:
        for backend, sim in hy.get("simulations", {hy.get("wasm_backend", "wasm"): hy["simulation"]}).items():
            rows = []
            for rate, pol in sim["by_rate"].items():
                for p, s in pol.items():
                    rows.append([rate, p, _f(s["median"]), _f(s["p95"]), _f(s["p99"])])
            d = hy["dispatcher"]
            if d.get("wasm_backend", backend) == backend:
                rows.append(
                    [
                        str(d["rate_per_s"]),
                        f"dispatcher (measured, {d['served_by']['wasm']} wasm / "
                        f"{d['served_by']['container']} container, {d['failed']} failed)",
                        _f(d["latency_ms"]["median"]),
                        _f(d["latency_ms"]["p95"]),
                        _f(d["latency_ms"]["p99"]),
                    ]
                )
            out.append(
                (
                    f"Hybrid bridge with {backend} as the wasm side: bursts of {sim['requests_per_burst']} "
                    f"requests, latency ms (container ready at {_f(sim['inputs']['container_ready_ms'] / 1e3, 2)} s;"
                    f" crossover {_f(sim['crossover_ms'] / 1e3, 2)} s)",
                    ["rate /s", "policy", "median", "p95", "p99"],
                    rows,
                )
            )
    prof = results.get("profile", {})
    if prof.get("ops", {}).get("ops"):
        ops = prof["ops"]
        out.append(
            (
                f"Where inference time goes, per op: {ops['runtimes']['native']} {_f(ops['native_total_ms'])} ms, "
                f"{ops['runtimes']['wasm']} {_f(ops['wasm_total_ms'])} ms per image (the guests' own --profile)",
                ["op", "native ms", "wasm ms", "wasm / native", "wasm − native ms", "native kernel", "wasm kernel"],
                [
                    [
                        o["op"],
                        _f(o.get("native_ms"), 2),
                        _f(o.get("wasm_ms"), 2),
                        _f(o.get("wasm_over_native"), 2),
                        _f(o.get("gap_ms"), 2),
                        o["native_kernel"],
                        o["wasm_kernel"],
                    ]
                    for o in ops["ops"][:10]
                ],
            )
        )
    if prof.get("guest_phases"):
        out.append(
            (
                "Guest phases (median ms inside the guest)",
                ["runtime", "whole request", "inference", "base64 + decode + preprocess"],
                [
                    [n, _f(p["request_ms"]), _f(p["inference_ms"]), _f(p["decode_preprocess_ms"])]
                    for n, p in prof["guest_phases"].items()
                ],
            )
        )
    if results["unavailable"]:
        out.append(("Not measured", ["runtime", "why"], [[k, v] for k, v in results["unavailable"].items()]))
    return out


def write_plots(results: dict, out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rt = results["runtimes"]
    paths = {k: out_dir / v for k, v in PLOTS.items()}
    names = list(rt)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.boxplot([rt[n]["warm_ms"]["samples"] for n in names], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("warm latency per request (ms, log)")
    ax.set_title("Warm latency distribution per runtime")
    fig.tight_layout()
    fig.savefig(paths["latency"], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [rt[n]["warm_ms"]["median"] for n in names], 0.4, label="warm median")
    ax.bar([i + 0.2 for i in x], [rt[n]["cold_ms"]["median"] for n in names], 0.4, label="cold median")
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title("Cold start vs warm request")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths["cold_warm"], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    hy = results.get("hybrid", {})
    if "timeline" in hy:
        for policy, pts in hy["timeline"].items():
            ax.plot([a / 1e3 for a, _ in pts], [v for _, v in pts], marker="o", ms=3, lw=1, label=f"{policy} (sim.)")
        log_ = hy["dispatcher"]["requests_log"]
        ax.scatter(
            [r["arrival_ms"] / 1e3 for r in log_],
            [r["latency_ms"] for r in log_],
            marker="x",
            c="black",
            label="dispatcher (measured)",
        )
        ready = hy["simulation"]["inputs"]["container_ready_ms"] / 1e3
        ax.axvline(ready, ls="--", c="grey", label="container ready")
        ax.set_yscale("log")
        ax.set_xlabel("arrival time since burst start (s)")
        ax.set_ylabel("latency (ms, log)")
        ax.set_title(
            f"Hybrid bridge ({hy.get('wasm_backend', 'wasm')} as the wasm side): one burst at "
            f"{hy['timeline_rate_per_s']} requests/s"
        )
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "hybrid bridge not measured: " + hy.get("skipped", "disabled"), ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(paths["hybrid"], dpi=100)
    plt.close(fig)
    return paths


def _header(results: dict) -> list[str]:
    m = results["machine"]
    return [
        f"Command: `{results['command']}`",
        f"Model: {results['model']}; image: {results['image']['name']} ({results['image']['bytes']:,} bytes)",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}; run {results['created']}",
        f"Settings: {results['settings']['runs']} warm samples in {results['settings']['rounds']} interleaved "
        f"rounds; spread = (p95 − median) / median"
        + (f"; noisy (spread > 0.25): {', '.join(results['noisy'])}" if results["noisy"] else ""),
    ]


def markdown(results: dict) -> str:
    lines = ["# Runtime comparison", ""] + [f"- {h}" for h in _header(results)] + [""]
    for title, header, rows in tables(results):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += ["## Plots", ""] + [f"![{k}]({v})" for k, v in PLOTS.items()] + [""]
    return "\n".join(lines)


def html_report(results: dict) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Runtime comparison</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%;display:block;margin:1em 0}</style>",
        "</head><body><h1>Runtime comparison</h1><ul>",
    ]
    parts += [f"<li>{esc(h)}</li>" for h in _header(results)] + ["</ul>"]
    for title, header, rows in tables(results):
        parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append("<h2>Plots</h2>")
    parts += [f"<img alt='{esc(k)}' src='{esc(v)}'>" for k, v in PLOTS.items()]
    # Lets a headless browser prove the plots rendered: the count of images that decoded.
    parts.append(
        "<script>window.addEventListener('load',()=>{document.body.dataset.imagesRendered="
        "[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;});</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_plots(results, out_dir)
    paths["md"] = out_dir / "report.md"
    paths["html"] = out_dir / "report.html"
    write_atomic(paths["md"], markdown(results).encode())
    write_atomic(paths["html"], html_report(results).encode())
    return paths


def format_summary(results: dict) -> str:
    """The runtime table for the terminal."""
    title, header, rows = tables(results)[0]
    widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [_header(results)[0], fmt(header)] + [fmt(r) for r in rows]
    lines += [f"{k} = {v:.2f}" for k, v in results["ratios"].items()]
    if "simulation" in results.get("hybrid", {}):
        lines.append(f"hybrid crossover: {results['hybrid']['simulation']['crossover_ms'] / 1e3:.2f} s")
    return "\n".join(lines)
