"""Compliance reports in four formats: a terminal table, JSON (the documented shape), CSV and a printable
HTML page with a coverage timeline per point."""

from __future__ import annotations

import csv
import html
import io
import json
from collections import defaultdict
from datetime import UTC, datetime

from jifang.retention.coverage import PointAudit

from jifang.config import Settings

FORMATS = ("table", "json", "csv", "html")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summary(audits: list[PointAudit]) -> dict:
    by_grid: dict[str, list[PointAudit]] = defaultdict(list)
    by_tier: dict[str, list[PointAudit]] = defaultdict(list)
    for audit in audits:
        by_grid[audit.grid].append(audit)
        by_tier[audit.tier].append(audit)

    def block(items: list[PointAudit]) -> dict:
        return {"points": len(items), "compliant": sum(a.compliant for a in items),
                "coverage": round(sum(a.coverage for a in items) / len(items), 6) if items else 1.0}

    return {
        **block(audits),
        "all_compliant": all(a.compliant for a in audits),
        "by_grid": {grid: block(items) for grid, items in sorted(by_grid.items())},
        "by_tier": {tier: block(items) for tier, items in sorted(by_tier.items())},
    }


def to_data(audits: list[PointAudit], generated_at: datetime) -> dict:
    return {
        "generated_at": iso(generated_at),
        "points": [
            {
                "camera": a.camera, "grid": a.grid, "tier": a.tier,
                "window_start": iso(a.window_start), "window_end": iso(a.window_end),
                "covered_seconds": round(a.covered_seconds, 3), "coverage": round(a.coverage, 6),
                "gaps": [{"start": iso(g.start), "end": iso(g.end), "cause": str(g.cause),
                          "violation": g.violation} for g in a.gaps],
                "min_lock_margin_seconds": a.min_lock_margin_seconds,
                "compliant": a.compliant,
            }
            for a in audits
        ],
        "summary": summary(audits),
    }


def render(audits: list[PointAudit], fmt: str, generated_at: datetime, settings: Settings) -> str:
    if fmt == "json":
        return json.dumps(to_data(audits, generated_at), ensure_ascii=False, indent=2)
    if fmt == "csv":
        return render_csv(audits)
    if fmt == "html":
        return render_html(audits, generated_at, settings)
    return render_table(audits, generated_at)


def verdict(audit: PointAudit) -> str:
    return "compliant" if audit.compliant else "NON-COMPLIANT"


def margin_text(audit: PointAudit) -> str:
    if audit.min_lock_margin_seconds is None:
        return "unverified"
    return f"{audit.min_lock_margin_seconds / 86400:+.1f} d"


def render_table(audits: list[PointAudit], generated_at: datetime) -> str:
    rows = [("camera", "grid", "tier", "window", "coverage", "violations", "lock margin", "verdict")]
    for a in audits:
        violations = [g for g in a.gaps if g.violation]
        causes = ",".join(sorted({str(g.cause) for g in violations})) or "-"
        rows.append((a.camera, a.grid, a.tier, f"{a.window_start:%Y-%m-%d}..{a.window_end:%Y-%m-%d}",
                     f"{100 * a.coverage:.2f}%", f"{len(violations)} {causes}" if violations else "0",
                     margin_text(a), verdict(a)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [f"retention audit at {iso(generated_at)} (DB3310/T 55-2019 §8.3.2)"]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    s = summary(audits)
    lines.append(f"{s['compliant']}/{s['points']} points compliant; mean coverage {100 * s['coverage']:.2f}%")
    return "\n".join(lines)


def render_csv(audits: list[PointAudit]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["camera", "grid", "tier", "window_start", "window_end", "covered_seconds", "coverage",
                     "gap_start", "gap_end", "gap_cause", "gap_violation", "min_lock_margin_seconds", "compliant"])
    for a in audits:
        common = [a.camera, a.grid, a.tier, iso(a.window_start), iso(a.window_end), f"{a.covered_seconds:.3f}",
                  f"{a.coverage:.6f}"]
        tail = ["" if a.min_lock_margin_seconds is None else a.min_lock_margin_seconds, a.compliant]
        if not a.gaps:
            writer.writerow([*common, "", "", "", "", *tail])
        for g in a.gaps:
            writer.writerow([*common, iso(g.start), iso(g.end), str(g.cause), g.violation, *tail])
    return out.getvalue()


CAUSE_COLOURS = {"camera_offline": "#f0ad4e", "before_registration": "#cccccc", "not_recorded": "#d9534f",
                 "object_missing": "#8e44ad", "upload_failed": "#c0392b", "lock_too_short": "#e67e22"}


def timeline_svg(audit: PointAudit, width: int = 640, height: int = 18) -> str:
    span = (audit.window_end - audit.window_start).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return width * (moment - audit.window_start).total_seconds() / span

    bars = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#5cb85c"/>']
    for gap in audit.gaps:
        w = max(1.0, x(gap.end) - x(gap.start))
        bars.append(f'<rect x="{x(gap.start):.1f}" y="0" width="{w:.1f}" height="{height}" '
                    f'fill="{CAUSE_COLOURS.get(str(gap.cause), "#d9534f")}"><title>{html.escape(str(gap.cause))} '
                    f'{iso(gap.start)} – {iso(gap.end)}</title></rect>')
    return (f'<svg class="timeline" width="{width}" height="{height}" role="img" '
            f'aria-label="coverage of {audit.camera}">{"".join(bars)}</svg>')


def render_html(audits: list[PointAudit], generated_at: datetime, settings: Settings) -> str:
    esc = html.escape
    grids = {g.code: g for g in settings.grids}
    names = {c.id: c.name for c in settings.cameras}
    s = summary(audits)
    grid_text = ", ".join(f"{esc(code)} {esc(grids[code].name)}" for code in sorted({a.grid for a in audits})
                          if code in grids)
    rows = []
    for a in audits:
        gaps = "".join(
            f"<li class='{'violation' if g.violation else 'explained'}'>{esc(str(g.cause))}: {esc(iso(g.start))} – "
            f"{esc(iso(g.end))} ({g.seconds / 3600:.1f} h){' ⚠' if g.violation else ''}</li>" for g in a.gaps
        ) or "<li>none</li>"
        rows.append(
            f"<tr class='{'ok' if a.compliant else 'bad'}'><td>{esc(a.camera)}<br><small>{esc(names.get(a.camera, ''))}"
            f"</small></td><td>{esc(a.grid)}</td><td>{esc(a.tier)}</td>"
            f"<td>{esc(a.window_start.strftime('%Y-%m-%d'))} – {esc(a.window_end.strftime('%Y-%m-%d'))}</td>"
            f"<td>{100 * a.coverage:.2f}%</td><td>{esc(margin_text(a))}</td><td>{verdict(a)}</td></tr>"
            f"<tr><td colspan='7'>{timeline_svg(a)}<ul class='gaps'>{gaps}</ul></td></tr>"
        )
    legend = " ".join(f"<span style='background:{c}'>&nbsp;&nbsp;</span> {esc(k)}" for k, c in CAUSE_COLOURS.items())
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>视频图像保存合规审计报告 Retention compliance report</title>
<style>
body {{ font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border: 1px solid #999; padding: 4px 6px; }}
tr.bad td {{ background: #fbeaea; }} .violation {{ color: #a00; }} .timeline {{ display: block; margin: 4px 0; }}
.signatures {{ margin-top: 3em; display: flex; gap: 4em; }} .signatures div {{ border-top: 1px solid #000;
 width: 14em; padding-top: 4px; }} @media print {{ body {{ margin: 1cm; }} }}
</style></head><body>
<h1>视频图像保存合规审计报告<br><small>Retention compliance report — DB3310/T 55-2019 §8.3.2</small></h1>
<p>站点 Site: {esc(settings.site)} · 网格 Grids: {grid_text or '-'}<br>
生成时间 Generated: {esc(iso(generated_at))}<br>
结论 Result: {s['compliant']}/{s['points']} 点位合规 points compliant;
平均覆盖率 mean coverage {100 * s['coverage']:.2f}%</p>
<p>Legend: <span style='background:#5cb85c'>&nbsp;&nbsp;</span> video {legend}</p>
<table><thead><tr><th>点位 Camera</th><th>网格 Grid</th><th>等级 Tier</th><th>要求窗口 Window</th>
<th>覆盖率 Coverage</th><th>最短锁定余量 Lock margin</th><th>结论 Verdict</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<div class="signatures"><div>审核人 Auditor</div><div>网格长 Grid head</div><div>日期 Date</div></div>
</body></html>
"""
