#!/usr/bin/env python3
"""Plots soak runs of `plinth bench --soak` into two PNGs: the server's RSS over time and the
latency distribution (reads and writes), one line per run.

Usage: scripts/plot-soak.py OUT_DIR LABEL RSS_CSV LATENCY_CSV [LABEL RSS_CSV LATENCY_CSV ...]
Writes OUT_DIR/soak-rss.png and OUT_DIR/soak-latency.png. Needs matplotlib (installed with
pip when missing).
"""
import csv
import subprocess
import sys
from pathlib import Path

try:
    import matplotlib
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)
    import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(argv):
    if len(argv) < 4 or (len(argv) - 1) % 3:
        sys.exit(__doc__)
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    runs = [argv[i:i + 3] for i in range(1, len(argv), 3)]

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, rss, _ in runs:
        data = rows(rss)
        ax.plot([float(r["seconds"]) / 60 for r in data],
                [int(r["rss_bytes"]) / 2**20 for r in data], label=label)
    ax.set_xlabel("minutes into the soak")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Resident memory during the soak")
    fig.tight_layout()
    fig.savefig(out / "soak-rss.png", dpi=110)

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, _, latency in runs:
        data = rows(latency)
        for side, style in (("read", "-"), ("write", "--")):
            part = [r for r in data if r["side"] == side]
            total = sum(int(r["count"]) for r in part) or 1
            ax.step([float(r["upto_ms"]) for r in part],
                    [100 * int(r["count"]) / total for r in part],
                    style, where="pre", label=f"{label} {side}s")
    ax.set_xscale("log")
    ax.set_xlabel("latency from the scheduled send (ms, log scale)")
    ax.set_ylabel("share of answers in the bucket (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Latency distribution during the soak")
    fig.tight_layout()
    fig.savefig(out / "soak-latency.png", dpi=110)
    print(f"wrote {out / 'soak-rss.png'} and {out / 'soak-latency.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
