"""The latency curve and throughput of a bench run as one PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLOT_NAME = "latency_curve.png"


def write_plot(results: dict[str, Any], path: Path) -> Path | None:
    """Left: p99 and median latency vs customers per request (/v1/predict, feast serve, /healthz
    floor), log-log. Right: requests/s vs concurrency, 1 vs N workers. None without HTTP results."""
    http = results.get("http", {})
    sizes = sorted(int(k) for k in http if k.isdigit())
    if not sizes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"predict": ("/v1/predict (features + model + TreeSHAP)", "tab:blue"),
              "feast_serve": ("feast serve (features only)", "tab:orange"),
              "healthz": ("/healthz (HTTP floor)", "tab:gray")}
    for name, (label, color) in styles.items():
        left.plot(sizes, [http[str(n)][name]["p99"] for n in sizes], "o-", color=color, label=f"{label} p99")
        left.plot(sizes, [http[str(n)][name]["median"] for n in sizes], "o--", color=color, alpha=0.5,
                  label=f"{label} median")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("customers per request")
    left.set_ylabel("latency, ms (client side, loopback)")
    left.set_title("Latency curve")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    by_c = results.get("throughput", {}).get("by_concurrency", {})
    if by_c:
        concurrency = sorted(int(k) for k in by_c)
        names = list(by_c[str(concurrency[0])]["rps"])
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            right.bar([j + i * width for j in range(len(concurrency))],
                      [by_c[str(c)]["rps"][name] for c in concurrency], width, label=name)
        right.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(concurrency))])
        right.set_xticklabels([str(c) for c in concurrency])
        right.set_xlabel("concurrent connections (1 customer per request)")
        right.set_ylabel("requests/s")
        right.set_title("Throughput")
        right.legend(fontsize=8)
    meta = results.get("meta", {})
    fig.suptitle(f"make bench --size {meta.get('size')} — {meta.get('started_at')} — {meta.get('load', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
