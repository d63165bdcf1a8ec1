"""Score the report's verdicts and intervals against the scenarios' truth; write a table and a plot.

Measures (the targets of issue 15):

* contradictions: ``consistent`` for a false claim or ``inconsistent`` for a
  true one (activity: at least one origin->destination departure in the
  window; quantity: the TEU of those voyages meets the claimed quantity);
* decisiveness: among scenarios with at least ``min_looks`` usable images per
  port in the window, the share with a decided verdict;
* coverage: the share of scenarios whose 90 % intervals of voyages and TEU
  contain the truth.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic

DECIDED = ("consistent", "inconsistent")
#: Bayes-factor thresholds for which the table shows what the verdicts would have been.
SWEEP = (3.0, 10.0, 20.0, 30.0, 100.0)


def claim_truth(record: dict) -> tuple[bool, bool | None]:
    """(activity claim true, quantity claim true) of a result record."""
    t = record["truth"]
    claimed = record.get("claimed_teu")
    quantity = None
    if claimed:
        lo, hi = claimed[0], claimed[1] if claimed[1] is not None else math.inf
        quantity = lo <= t["teu_in_window"] <= hi
    return t["voyages_in_window"] >= 1, quantity


def contradiction(verdict: str, truth: bool | None) -> bool:
    return truth is not None and ((verdict == "consistent" and not truth) or (verdict == "inconsistent" and truth))


def score_results(records: list[dict], min_looks: int = 4) -> dict:
    """Summary figures and one row per scenario."""
    rows = []
    for r in records:
        act_true, q_true = claim_truth(r)
        win = r["inference"]["window"]
        looks = r["inference"]["usable_looks_in_window"]
        t = r["truth"]
        v_lo, v_hi = win["voyages"]["interval"]
        teu_lo, teu_hi = win["teu"]["interval"]
        rows.append({
            "seed": r["seed"], "placement": t["placement"], "voyages_true": t["voyages_in_window"],
            "teu_true": t["teu_in_window"], "s2_every": t["s2_every"], "s1_every": t["s1_every"],
            "cloud": t["cloud_probability"], "looks_min": min(looks.values()) if looks else 0,
            "activity": r["verdict"]["activity"], "quantity": r["verdict"]["quantity"],
            "activity_true": act_true, "quantity_true": q_true,
            "voyages_median": win["voyages"]["median"], "voyages_interval": [v_lo, v_hi],
            "teu_median": win["teu"]["median"], "teu_interval": [teu_lo, teu_hi],
            "p_any_voyage": win["p_any_voyage"], "p_claim_quantity_met": win["p_claim_quantity_met"],
            "bf_any": win["bayes_factor_any_voyage"], "bf_quantity": win["bayes_factor_claim_quantity"],
            "lr_max_vs_none": win.get("likelihood_ratio_max_vs_none", math.inf),  # absent: never ruled out
            "contradiction_activity": contradiction(r["verdict"]["activity"], act_true),
            "contradiction_quantity": contradiction(r["verdict"]["quantity"], q_true),
            "covers_voyages": v_lo <= t["voyages_in_window"] <= v_hi,
            "covers_teu": teu_lo <= t["teu_in_window"] <= teu_hi,
            "perfect_activity": (r.get("perfect_detector") or {}).get("activity"),
            "perfect_quantity": (r.get("perfect_detector") or {}).get("quantity"),
        })
    n = len(rows)
    well = [x for x in rows if x["looks_min"] >= min_looks]
    share = lambda xs, key: (sum(1 for x in xs if key(x)) / len(xs)) if xs else None
    summary = {
        "scenarios": n,
        "contradictions_activity": sum(x["contradiction_activity"] for x in rows),
        "contradictions_quantity": sum(x["contradiction_quantity"] for x in rows),
        "well_observed": len(well), "min_looks": min_looks,
        "decisive_activity": share(well, lambda x: x["activity"] in DECIDED),
        "decisive_quantity": share(well, lambda x: x["quantity"] in DECIDED),
        "decisive_activity_all": share(rows, lambda x: x["activity"] in DECIDED),
        "decisive_quantity_all": share(rows, lambda x: x["quantity"] in DECIDED),
        "coverage_voyages": share(rows, lambda x: x["covers_voyages"]),
        "coverage_teu": share(rows, lambda x: x["covers_teu"]),
        # the same inference fed the true berth counts: what the schedule alone allows
        "perfect_decisive_activity": share(well, lambda x: x["perfect_activity"] in DECIDED),
        "perfect_decisive_quantity": share(well, lambda x: x["perfect_quantity"] in DECIDED),
        "perfect_contradictions_activity": sum(contradiction(x["perfect_activity"] or "", x["activity_true"])
                                               for x in rows),
    }
    summary["threshold_sweep"] = threshold_sweep(rows, well)
    return {"summary": summary, "rows": rows}


def threshold_sweep(rows: list[dict], well: list[dict]) -> list[dict]:
    """Contradictions and decided shares had the verdict used each Bayes factor of :data:`SWEEP`.

    Applies the rules of :func:`...report.analysis.verdict.verdict` (activity: the Bayes factor of
    any voyage, or the likelihood ratio of the likeliest number of voyages against none; quantity:
    the Bayes factor of the claimed quantity) to the stored numbers.
    """
    from ..report.analysis.verdict import activity_call, decided

    out = []
    for t in SWEEP:
        def verdicts(x, t=t):
            act = activity_call(x["p_any_voyage"], x["bf_any"], x["lr_max_vs_none"], t)
            q = 0 if x["bf_quantity"] is None else decided(x["p_claim_quantity_met"], x["bf_quantity"], t)
            return act, q
        names = {1: "consistent", -1: "inconsistent", 0: "insufficient_data"}
        cont_a = cont_q = dec_a = dec_q = 0
        for x in rows:
            a, q = verdicts(x)
            cont_a += contradiction(names[a], x["activity_true"])
            cont_q += contradiction(names[q], x["quantity_true"])
        for x in well:
            a, q = verdicts(x)
            dec_a += a != 0
            dec_q += q != 0
        out.append({"bayes_factor": t, "contradictions_activity": cont_a, "contradictions_quantity": cont_q,
                    "decisive_activity": dec_a / len(well) if well else None,
                    "decisive_quantity": dec_q / len(well) if well else None})
    return out


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def table_markdown(scored: dict) -> str:
    s = scored["summary"]
    lines = [
        "# Calibration on SIMULATED scenarios (pipeline/simulation/families.py)", "",
        f"- scenarios: {s['scenarios']}",
        f"- contradictions (consistent for a false claim, inconsistent for a true one): activity "
        f"{s['contradictions_activity']}, quantity {s['contradictions_quantity']} (target: none)",
        f"- decided verdicts among the {s['well_observed']} scenarios with >= {s['min_looks']} usable images per "
        f"port in the window: activity {_pct(s['decisive_activity'])}, quantity {_pct(s['decisive_quantity'])} "
        f"(target >= 90 %); over all scenarios: activity {_pct(s['decisive_activity_all'])}, quantity "
        f"{_pct(s['decisive_quantity_all'])}",
        f"- 90 % intervals containing the truth: voyages {_pct(s['coverage_voyages'])}, TEU "
        f"{_pct(s['coverage_teu'])} (target 85-95 %)",
        f"- the same inference with a perfect vessel detector (true berth counts on the same usable dates): "
        f"decided activity {_pct(s.get('perfect_decisive_activity'))}, quantity "
        f"{_pct(s.get('perfect_decisive_quantity'))} of the well-observed scenarios; activity contradictions "
        f"{s.get('perfect_contradictions_activity')}. What stays undecided there is undecided by the schedule, "
        f"not the detectors.", "",
        "What other decision thresholds would have given on these scenarios (the default is the report's "
        "`decide_bayes_factor`):", "",
        "| Bayes factor | contradictions activity | contradictions quantity | decided activity | decided quantity |",
        "|---|---|---|---|---|",
        *(f"| {t['bayes_factor']:g} | {t['contradictions_activity']} | {t['contradictions_quantity']} | "
          f"{_pct(t['decisive_activity'])} | {_pct(t['decisive_quantity'])} |" for t in s.get("threshold_sweep", [])),
        "",
        "| seed | placement | S2 d | S1 d | cloud | looks | voyages true | voyages median [90 %] | TEU true | "
        "TEU median [90 %] | P(any) | BF any | activity | P(met) | BF met | quantity | perfect detector | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in scored["rows"]:
        flags = []
        if x["contradiction_activity"]:
            flags.append("CONTRADICTION activity")
        if x["contradiction_quantity"]:
            flags.append("CONTRADICTION quantity")
        if not x["covers_voyages"]:
            flags.append("voyages outside")
        if not x["covers_teu"]:
            flags.append("TEU outside")
        lines.append(
            f"| {x['seed']} | {x['placement']} | {x['s2_every'] or '-'} | {x['s1_every'] or '-'} | {x['cloud']:.2f} | "
            f"{x['looks_min']} | {x['voyages_true']} | {x['voyages_median']} [{x['voyages_interval'][0]}-"
            f"{x['voyages_interval'][1]}] | {x['teu_true']:.0f} | {x['teu_median']} [{x['teu_interval'][0]}-"
            f"{x['teu_interval'][1]}] | {x['p_any_voyage']:.2f} | {x['bf_any']:.3g} | {x['activity']} | "
            f"{x['p_claim_quantity_met']:.2f} | {x['bf_quantity']:.3g} | {x['quantity']} | "
            f"{x['perfect_activity'] or '-'} / {x['perfect_quantity'] or '-'} | {', '.join(flags)} |")
    return "\n".join(lines) + "\n"


def calibration_png(scored: dict) -> bytes:
    """Reliability of P(any voyage) and P(quantity met), and interval coverage against its target band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = scored["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    bins = np.linspace(0, 1, 6)
    for ax, key, truth_key, title in ((axes[0], "p_any_voyage", "activity_true", "P(any voyage in window)"),
                                      (axes[1], "p_claim_quantity_met", "quantity_true", "P(claimed quantity met)")):
        pred = np.array([x[key] for x in rows if x[truth_key] is not None], dtype=float)
        obs = np.array([x[truth_key] for x in rows if x[truth_key] is not None], dtype=float)
        idx = np.clip(np.digitize(pred, bins) - 1, 0, len(bins) - 2)
        centres, freq, counts = [], [], []
        for b in range(len(bins) - 1):
            sel = idx == b
            if sel.any():
                centres.append(pred[sel].mean())
                freq.append(obs[sel].mean())
                counts.append(int(sel.sum()))
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
        ax.scatter(centres, freq, s=[20 + 8 * c for c in counts], color="C0", zorder=3, label="scenarios (size = count)")
        for c, f, k in zip(centres, freq, counts):
            ax.annotate(str(k), (c, f), textcoords="offset points", xytext=(6, -10), fontsize=8)
        ax.set_xlabel(f"predicted {title}")
        ax.set_ylabel("observed frequency (truth)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.legend(fontsize=8, loc="upper left")
    s = scored["summary"]
    ax = axes[2]
    vals = [s["coverage_voyages"] or 0, s["coverage_teu"] or 0]
    ax.axhspan(0.85, 0.95, color="C2", alpha=0.2, label="target 85-95 %")
    ax.bar(["voyages", "TEU"], vals, color=["C0", "C1"])
    for i, v in enumerate(vals):
        ax.text(i, v + 0.01, f"{100 * v:.0f} %", ha="center")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of scenarios whose 90 % interval holds the truth")
    ax.set_title(f"coverage ({s['scenarios']} scenarios)")
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"SIMULATED calibration: contradictions {s['contradictions_activity']} (activity), "
                 f"{s['contradictions_quantity']} (quantity); decided (>= {s['min_looks']} looks/port): "
                 f"activity {_pct(s['decisive_activity'])}, quantity {_pct(s['decisive_quantity'])}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(scored: dict, dest: Path) -> None:
    dest = Path(dest)
    write_json_atomic(dest / "calibration.json", scored)
    write_text_atomic(dest / "calibration.md", table_markdown(scored))
    write_bytes_atomic(dest / "calibration.png", calibration_png(scored))
