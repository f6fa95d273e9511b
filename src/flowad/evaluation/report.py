"""Benchmark reports: Markdown and one self-contained HTML file (figures embedded), from the rows
written by :func:`flowad.evaluation.bench.run_bench`."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from flowad.evaluation.figures import subplots
from flowad.evaluation.html_page import html_page, html_table, img_tag
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.plots import plot_roc_curves

__all__ = ["summarize", "versions_note", "write_report"]


def summarize(results: pd.DataFrame, protocol: str) -> dict[str, pd.DataFrame]:
    """Tables for one protocol.

    Only data sets on which every detector finished are ranked and averaged, so each detector is
    judged on the same sets; a detector that failed on every set is left out of the ranking (its
    errors are listed under ``"failures"``).

    Returns:
        ``"roc_auc"`` and ``"pr_auc"``: data set x detector, mean over seeds;
        ``"summary"``: per detector mean ROC-AUC, mean PR-AUC, average rank, wins, F1 at its own
        threshold, sorted by mean ROC-AUC; ``"time"``: mean fit/score seconds and peak memory with
        ratios to ``iforest`` when present; ``"failures"``: jobs that raised.
    """
    rows = results[results["protocol"] == protocol]
    ok = rows[rows["status"] == "ok"]
    tables = {m: ok.pivot_table(index="dataset", columns="detector", values=m, aggfunc="mean") for m in
              ("roc_auc", "pr_auc", "f1")}
    complete = tables["roc_auc"].dropna(axis=1, how="all").dropna()
    ranks = complete.rank(axis=1, ascending=False)
    summary = pd.DataFrame({
        "mean_roc_auc": complete.mean(),
        "mean_pr_auc": tables["pr_auc"].loc[complete.index, complete.columns].mean(),
        "avg_rank": ranks.mean(),
        "wins": (ranks == 1).sum(),
        "mean_f1_own_threshold": tables["f1"].loc[complete.index, complete.columns].mean(),
    }).sort_values("mean_roc_auc", ascending=False)
    timing = ok.groupby("detector")[["fit_seconds", "score_seconds", "peak_memory_mb"]].mean()
    if "iforest" in timing.index:
        timing["fit_vs_iforest"] = timing["fit_seconds"] / timing.loc["iforest", "fit_seconds"]
        timing["score_vs_iforest"] = timing["score_seconds"] / timing.loc["iforest", "score_seconds"]
    failures = rows[rows["status"] != "ok"][["dataset", "detector", "seed", "error"]] if "error" in rows else rows[:0]
    return {"roc_auc": tables["roc_auc"], "pr_auc": tables["pr_auc"], "summary": summary, "ranks": ranks,
            "time": timing.sort_values("fit_seconds"), "failures": failures, "n_complete": len(complete)}


def _rank_plot(ranks: pd.DataFrame, path: Path, title: str) -> Path:
    order = ranks.mean().sort_values().index
    fig, ax = subplots(figsize=(6.4, 0.38 * len(order) + 1.2), dpi=110)
    rng = np.random.default_rng(0)
    for i, name in enumerate(order):
        values = ranks[name].to_numpy()
        ax.scatter(values, i + rng.uniform(-0.18, 0.18, len(values)), s=9, alpha=0.35, color="C0")
        ax.plot([values.mean()] * 2, [i - 0.32, i + 0.32], color="C3", lw=2.5)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rank per data set (1 = best ROC-AUC); red bar: average rank", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _fmt(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    return frame.reset_index().round(digits)


def write_report(out_dir: str | Path, title: str = "flowad benchmark") -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and the figures for the results in ``out_dir``.

    Returns:
        The Markdown and HTML paths.
    """
    out = Path(out_dir)
    results = pd.read_csv(out / "results.csv")
    machine = json.loads((out / "machine.json").read_text()) if (out / "machine.json").exists() else {}
    versions = versions_note(results)
    machine_line = _machine_line(machine, results, with_version=not versions)
    md = [f"# {title}\n", machine_line]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(machine_line)}</p>"]
    if versions:
        md.append(f"\n{versions}\n")
        body.append(f"<p>{html.escape(versions)}</p>")
    figures: list[Path] = []
    for protocol in sorted(results["protocol"].unique()):
        s = summarize(results, protocol)
        rank_png = _rank_plot(s["ranks"], out / f"ranks_{protocol}.png", f"Average rank, {protocol} protocol "
                              f"({s['n_complete']} data sets)")
        figures.append(rank_png)
        seeds = sorted(int(seed) for seed in results["seed"].unique())
        head = (f"## Protocol `{protocol}`\n\n{s['n_complete']} data sets on which every detector finished; "
                f"means over seeds {seeds}. F1 is at each detector's own threshold (from training data).\n")
        md += [head, markdown_table(_fmt(s["summary"])), f"\n![ranks]({rank_png.name})\n",
               "### ROC-AUC per data set\n", markdown_table(_fmt(s["roc_auc"])),
               "### PR-AUC per data set\n", markdown_table(_fmt(s["pr_auc"])),
               "### Time and memory (means per job)\n", markdown_table(_fmt(s["time"], 4))]
        body += [f"<h2>Protocol {protocol}</h2>", f"<p>{html.escape(head.split(chr(10), 2)[-1])}</p>",
                 html_table(s["summary"]), img_tag(rank_png), "<h3>ROC-AUC per data set</h3>", html_table(s["roc_auc"]),
                 "<h3>PR-AUC per data set</h3>", html_table(s["pr_auc"]),
                 "<h3>Time and memory (means per job)</h3>", html_table(s["time"], 4)]
        if len(s["failures"]):
            md += ["### Failed jobs\n", markdown_table(s["failures"].reset_index(drop=True))]
            body += ["<h3>Failed jobs</h3>", s["failures"].to_html(index=False)]
        for scores_set in sorted({p.name.split("__")[0] for p in (out / "scores").glob(f"*__{protocol}__*.npz")}):
            curves = {}
            for path in sorted((out / "scores").glob(f"{scores_set}__{protocol}__*.npz")):
                with np.load(path) as data:
                    y, curves[path.stem.split("__")[2]] = data["y"], data["anomaly_score"]
            png = plot_roc_curves(y, curves, out / f"roc_{scores_set}_{protocol}.png",
                                  title=f"{scores_set} ({protocol}, first seed)")
            md.append(f"\n![ROC {scores_set}]({png.name})\n")
            body += [f"<h3>ROC curves: {html.escape(scores_set)}</h3>", img_tag(png)]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md))
    html_path.write_text(html_page(title, "\n".join(body)))
    return md_path, html_path


def versions_note(results: pd.DataFrame) -> str:
    """A sentence naming the flowad version each detector's rows were run with, when the rows come
    from more than one (a resumed run keeps the rows of earlier versions); ``""`` otherwise.

    Example:
        >>> rows = pd.DataFrame({"detector": ["maf", "maf", "knn"], "flowad_version": ["0.1.0", "0.1.0", "0.2.0"]})
        >>> versions_note(rows)
        'Rows from several flowad versions: 0.1.0: maf; 0.2.0: knn.'
    """
    if "flowad_version" not in results:
        return ""
    version = results["flowad_version"].fillna("not recorded").astype(str)
    if version.nunique() < 2:
        return ""
    parts = []
    for name, group in results.groupby(version, sort=True):
        detectors = ", ".join(sorted(group["detector"].unique()))
        parts.append(f"{name}: {detectors}")
    return "Rows from several flowad versions: " + "; ".join(parts) + "."


def _machine_line(machine: dict, results: pd.DataFrame, with_version: bool) -> str:
    rows = f"{len(results)} jobs, {results['dataset'].nunique()} data sets, {results['detector'].nunique()} detectors"
    if not machine:
        return rows + "."
    line = (f"{rows}; {machine.get('cpu_count')} CPU cores, {machine.get('torch_threads')} torch threads, "
            f"{machine.get('platform')}, torch {machine.get('torch')}")
    if not with_version:  # the rows come from several versions: the versions note names them
        return line + "."
    recorded = results["flowad_version"].dropna() if "flowad_version" in results else ()
    return line + f", flowad {recorded.iloc[0] if len(recorded) else machine.get('flowad')}."
