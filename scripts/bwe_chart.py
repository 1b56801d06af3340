#!/usr/bin/env python3
"""Chart of a constrained player's estimate, chosen layer and received
bitrate over time, from one run of tests/browser/simulcast.mjs.

    RUST_LOG=warn,sfu_core::media::worker::layers=trace target/debug/sfu --dev > sfu.log 2>&1 &
    (cd tests/browser && SERVER=http://127.0.0.1:7880 node simulcast.mjs chromium) > run.log
    python3 scripts/bwe_chart.py sfu.log run.log docs/bench/simulcast-bwe.png

sfu.log gives the server's estimate and layer per choice (every 200 ms per
player); run.log gives the script's `timeline` rows (C's decoded width and
received kbit/s, the relay's rate). Needs matplotlib (pip install matplotlib).
"""
import datetime as dt
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRACE = re.compile(r"^(\S+Z) .*media=(\d+) estimate=(\d+) layer=(\d+)")


def main(sfu_log, run_log, out):
    rows = [json.loads(l.split(" ", 1)[1]) for l in open(run_log) if l.startswith("timeline ")]
    if not rows:
        sys.exit("no timeline rows in " + run_log)
    wall0 = rows[0]["wall"] / 1000.0
    by_media = {}
    for line in open(sfu_log):
        m = TRACE.match(ANSI.sub("", line))
        if not m:
            continue
        at = dt.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        by_media.setdefault(m.group(2), []).append((at - wall0, int(m.group(3)), int(m.group(4))))
    # The constrained player is the one whose layer changed most often.
    def changes(k):
        layers = [l for _, _, l in by_media[k]]
        return sum(a != b for a, b in zip(layers, layers[1:]))

    media = max(by_media, key=changes)
    est = by_media[media]
    t = [r["wall"] / 1000.0 - wall0 for r in rows]
    fig, (ax, lay) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([e[0] for e in est], [e[1] / 1000 for e in est], label="server estimate", color="tab:blue")
    ax.plot(t, [r["cKbps"] for r in rows], label="received by the player", color="tab:green")
    link = [r["linkKbps"] for r in rows]
    ax.step(t, [v if v is not None else float("nan") for v in link], where="post", label="link rate", color="tab:red", linestyle="--")
    ax.set_ylabel("kbit/s")
    ax.set_ylim(0, 3000)
    ax.legend(loc="upper right")
    ax.set_title("Constrained Chromium player of a 3-layer Chromium simulcast")
    lay.step([e[0] for e in est], [e[2] for e in est], where="post", label="layer chosen", color="tab:blue")
    width = {320: 0, 640: 1, 1280: 2}
    lay.plot(t, [width.get(r["cWidth"], float("nan")) for r in rows], ".", label="layer decoded (frameWidth)", color="tab:orange")
    lay.set_yticks([0, 1, 2], ["q 320", "h 640", "f 1280"])
    lay.set_xlabel("seconds")
    lay.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"{out}: player media={media}, {len(est)} estimates, {len(rows)} samples")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
