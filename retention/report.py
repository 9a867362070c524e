"""Compliance reports an auditor can sign, in four formats: a terminal table, JSON (the documented shape, with a
SHA-256 digest of its own content), CSV and a printable HTML page (Chinese first, enums localised, local time of
the site with its UTC offset, durations as h:m:s, a coverage timeline per point, the verdict rule, the digest)."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from jifang.retention.coverage import Gap, PointAudit

from jifang.config import Settings
from jifang.domain import GAP_CAUSE_NAMES
from jifang.tiers import DEFAULT_TIMEZONE, TIER_NAMES, zone

FORMATS = ("table", "json", "csv", "html")
STANDARD = "DB3310/T 55-2019 §8.3.2"

LANGS = ("zh", "en")
# (Chinese, English) pairs: the HTML report is printed in one language; JSON, CSV and the table carry both
FINDING_NAMES = {
    "lock_margin": ("存储锁定期短于保存期限", "a stored lock is shorter than the floor"),
    "min_coverage": ("覆盖率低于该等级的最低要求", "coverage below the tier minimum"),
    "image_lock_short": ("图片锁定期短于保存期限", "an image lock is shorter than the image floor"),
    "image_deleted_before_floor": ("图片在保存期限前被删除", "images deleted before their floor"),
}
RULE_LINES = [
    ("要求窗口：自“当前时间 − 保存期限”与“登记时间”中较晚者起，至“当前时间 − 结算时间”止；登记之前不适用，不计入分母。",
     "Required window = [max(now − floor, registered), now − settle]; before registration is not applicable."),
    ("每个无视频区间都有原因，原因仅来自当时写入的证据（录像端事件、代理值守记录、保存任务的核查结果）。",
     "Every interval without video has a cause, from evidence written at the time (recorder events, agent "
     "custody records, the retention job's checks)."),
    ("违规：无原因的无记录区间、上传失败、对象缺失、锁定期不足、图片早于期限被删除。",
     "Violations: unexplained intervals, lost or missing objects, short locks, images deleted before the floor."),
    ("已说明原因的中断（摄像机离线、代理离线、交接、存储不可用、时钟跳变）不算违规，但降低覆盖率；"
     "若设置了等级最低覆盖率，低于该值即为违规。",
     "Explained outages (camera offline, agent offline, handover, store unavailable, clock step) are no "
     "violation but lower the coverage; below a configured per-tier minimum coverage they violate."),
]
VERDICT_NAMES = {"compliant": ("合规", "compliant"), "compliant_so_far": ("目前合规，窗口未满", "compliant so far"),
                 "non_compliant": ("不合规", "NON-COMPLIANT")}


def _both(pair: tuple[str, str]) -> str:
    return f"{pair[0]} ({pair[1]})"


TIER_LABELS = {code: _both(pair) for code, pair in TIER_NAMES.items()}
CAUSE_NAMES = {str(cause): pair for cause, pair in GAP_CAUSE_NAMES.items()}
CAUSE_LABELS = {code: _both(pair) for code, pair in CAUSE_NAMES.items()}
FINDING_LABELS = {code: _both(pair) for code, pair in FINDING_NAMES.items()}
RULE = [f"{zh} ({en})" for zh, en in RULE_LINES]
VERDICTS = {code: _both(pair) for code, pair in VERDICT_NAMES.items()}
CAUSE_COLOURS = {"camera_offline": "#f0ad4e", "agent_offline": "#f7d26a", "handover": "#9ecae1",
                 "store_unavailable": "#fdae6b", "clock_step": "#bcbddc", "not_recorded": "#d9534f",
                 "object_missing": "#8e44ad", "upload_failed": "#c0392b", "lock_too_short": "#e67e22"}


def iso(moment: datetime, tz: str = DEFAULT_TIMEZONE) -> str:
    """ISO 8601 in the site's local time with its offset: 2026-11-27T20:00:00+08:00."""
    return moment.astimezone(zone(tz)).isoformat(timespec="seconds")


def local_text(moment: datetime, tz: str = DEFAULT_TIMEZONE) -> str:
    local = moment.astimezone(zone(tz))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} (UTC{offset[:3]}:{offset[3:]})"


def hms(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def verdict_key(audit: PointAudit) -> str:
    if not audit.compliant:
        return "non_compliant"
    return "compliant_so_far" if audit.complete_at is not None else "compliant"


def cause_label(cause: str) -> str:
    return CAUSE_LABELS.get(cause, cause)


def finding_label(code: str) -> str:
    if code.startswith("gap:"):
        return f"违规区间 (violating intervals): {cause_label(code[4:])}"
    return FINDING_LABELS.get(code, code)


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


def gaps_by_cause(audit: PointAudit) -> dict[str, float]:
    out: dict[str, float] = {}
    for gap in audit.gaps:
        out[str(gap.cause)] = round(out.get(str(gap.cause), 0.0) + gap.seconds, 3)
    return out


def _gap(g: Gap, tz: str) -> dict:
    return {"start": iso(g.start, tz), "end": iso(g.end, tz), "seconds": round(g.seconds, 3), "cause": str(g.cause),
            "cause_label": cause_label(str(g.cause)), "detail": g.detail, "violation": g.violation}


def _point(a: PointAudit, tz: str, names: dict[str, str]) -> dict:
    optional = (lambda m: None if m is None else iso(m, tz))  # noqa: E731
    images = None
    if a.images is not None:
        images = {"objects": a.images.objects, "min_lock_margin_seconds": a.images.min_lock_margin_seconds,
                  "held": a.images.held, "deleted_before_floor": a.images.deleted_before_floor,
                  "checked_at": optional(a.images.checked_at)}
    return {
        "camera": a.camera, "name": names.get(a.camera, ""), "grid": a.grid, "tier": a.tier,
        "tier_label": TIER_LABELS.get(a.tier, a.tier),
        "window_start": iso(a.window_start, tz), "window_end": iso(a.window_end, tz),
        "floor_start": optional(a.floor_start), "registered_at": optional(a.registered_at),
        "window_complete_at": optional(a.complete_at), "settle_seconds": a.settle_seconds,
        "required_seconds": round(a.required_seconds, 3), "covered_seconds": round(a.covered_seconds, 3),
        "coverage": round(a.coverage, 6), "min_coverage": a.min_coverage,
        "gaps": [_gap(g, tz) for g in a.gaps], "gaps_by_cause": gaps_by_cause(a),
        "min_lock_margin_seconds": a.min_lock_margin_seconds, "locks_checked_at": optional(a.locks_checked_at),
        "images": images,
        "findings": [{"code": f.code, "label": finding_label(f.code), "detail": f.detail} for f in a.findings],
        "compliant": a.compliant, "verdict": verdict_key(a), "verdict_label": VERDICTS[verdict_key(a)],
    }


def digest(data: dict) -> str:
    """SHA-256 of the report's canonical JSON (sorted keys, no whitespace) without the digest itself: a printed
    copy can be matched to the stored one by recomputing it."""
    body = {k: v for k, v in data.items() if k != "sha256"}
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_data(audits: list[PointAudit], generated_at: datetime, settings: Settings | None = None) -> dict:
    tz = settings.timezone if settings is not None else DEFAULT_TIMEZONE
    names = {c.id: c.name for c in settings.cameras} if settings is not None else {}
    data = {
        "title": "视频图像保存合规审计报告 (retention compliance report)",
        "standard": STANDARD,
        "site": settings.site if settings is not None else "",
        "timezone": tz,
        "generated_at": iso(generated_at, tz),
        "rule": RULE,
        "points": [_point(a, tz, names) for a in audits],
        "summary": summary(audits),
    }
    data["sha256"] = digest(data)
    return data


def render(audits: list[PointAudit], fmt: str, generated_at: datetime, settings: Settings, lang: str = "zh") -> str:
    """The report in ``fmt``; ``lang`` (zh | en) picks the printed HTML's language (the others carry both)."""
    if fmt == "json":
        return json.dumps(to_data(audits, generated_at, settings), ensure_ascii=False, indent=2)
    if fmt == "csv":
        return render_csv(audits, settings)
    if fmt == "html":
        return render_html(audits, generated_at, settings, lang)
    return render_table(audits, generated_at, settings)


def margin_text(seconds: float | None, unverified: str = "未核查 (unverified)") -> str:
    if seconds is None:
        return unverified
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{hms(abs(seconds))}"


def render_table(audits: list[PointAudit], generated_at: datetime, settings: Settings) -> str:
    tz = settings.timezone
    rows = [("点位 camera", "网格 grid", "等级 tier", "窗口 window", "覆盖率 coverage", "违规 violations",
             "锁定余量 lock margin", "结论 verdict")]
    for a in audits:
        findings = ", ".join(f.code for f in a.findings) or "0"
        rows.append((a.camera, a.grid, a.tier, f"{a.window_start.astimezone(zone(tz)):%Y-%m-%d %H:%M}.."
                     f"{a.window_end.astimezone(zone(tz)):%Y-%m-%d %H:%M}", f"{100 * a.coverage:.2f}%", findings,
                     margin_text(a.min_lock_margin_seconds), VERDICTS[verdict_key(a)]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [f"retention audit at {local_text(generated_at, tz)} ({STANDARD})"]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    s = summary(audits)
    lines.append(f"{s['compliant']}/{s['points']} points compliant; mean coverage {100 * s['coverage']:.2f}%")
    return "\n".join(lines)


def render_csv(audits: list[PointAudit], settings: Settings) -> str:
    tz = settings.timezone
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["camera", "grid", "tier", "window_start", "window_end", "covered_seconds", "coverage",
                     "gap_start", "gap_end", "gap_seconds", "gap_cause", "gap_violation", "min_lock_margin_seconds",
                     "compliant"])
    for a in audits:
        common = [a.camera, a.grid, a.tier, iso(a.window_start, tz), iso(a.window_end, tz),
                  f"{a.covered_seconds:.3f}", f"{a.coverage:.6f}"]
        tail = ["" if a.min_lock_margin_seconds is None else a.min_lock_margin_seconds, a.compliant]
        if not a.gaps:
            writer.writerow([*common, "", "", "", "", "", *tail])
        for g in a.gaps:
            writer.writerow([*common, iso(g.start, tz), iso(g.end, tz), f"{g.seconds:.3f}", str(g.cause),
                             g.violation, *tail])
    return out.getvalue()


def timeline_svg(audit: PointAudit, tz: str, width: int = 720, height: int = 22, label: str = "覆盖时间轴",
                 cause_name: Callable[[str], str] | None = None) -> str:
    """The window as one bar: green where video is, each gap in its cause's colour (at least 2 px wide, so a
    minute in three months still shows), local date ticks under it."""
    span = (audit.window_end - audit.window_start).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return width * (moment - audit.window_start).total_seconds() / span

    bars = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#5cb85c"/>']
    for gap in audit.gaps:
        w = max(2.0, x(gap.end) - x(gap.start))
        bars.append(f'<rect x="{min(x(gap.start), width - w):.1f}" y="0" width="{w:.1f}" height="{height}" '
                    f'fill="{CAUSE_COLOURS.get(str(gap.cause), "#d9534f")}"><title>'
                    f'{(cause_name or (lambda c: html.escape(cause_label(c))))(str(gap.cause))} '
                    f'{html.escape(local_text(gap.start, tz))} – '
                    f'{html.escape(local_text(gap.end, tz))}</title></rect>')
    ticks = []
    for i in range(5):
        moment = audit.window_start + (audit.window_end - audit.window_start) * (i / 4)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        tick = moment.astimezone(zone(tz)).strftime("%m-%d %H:%M")
        ticks.append(f'<text x="{width * i / 4:.1f}" y="{height + 12}" font-size="10" text-anchor="{anchor}">'
                     f'{tick}</text>')
    return (f'<svg class="timeline" viewBox="0 0 {width} {height + 14}" width="{width}" height="{height + 14}" '
            f'role="img" aria-label="{html.escape(label)} {audit.camera}">{"".join(bars)}{"".join(ticks)}'
            f'</svg>')


# the printed report's words, (Chinese, English)
WORDS = {
    "title": ("视频图像保存合规审计报告", "Retention compliance report"),
    "site": ("站点", "Site"), "timezone": ("时区", "Time zone"), "generated": ("生成时间", "Generated"),
    "settle": ("结算时间", "Settle"),
    "settle_note": ("正在录制的片段及其入库；上传在 {grace} 分钟宽限后判定",
                    "the segment being recorded and its cataloguing; uploads are judged after the {grace}-minute "
                    "upload grace"),
    "result": ("结论", "Result"), "points_compliant": ("个点位合规", "points compliant"),
    "mean_coverage": ("平均覆盖率", "mean coverage"), "rule": ("判定规则", "Verdict rule"),
    "summary": ("汇总", "Summary"), "grid": ("网格", "Grid"), "compliant": ("合规", "Compliant"),
    "coverage": ("覆盖率", "Coverage"), "tier": ("等级", "Tier"), "legend": ("图例", "Legend"),
    "video": ("有视频", "video"), "points": ("点位", "Points"), "window": ("要求窗口", "Window"),
    "min_lock_margin": ("最短锁定余量", "Min lock margin"), "objects_checked": ("对象核查", "Objects checked"),
    "images": ("图片", "Images"), "by_cause": ("按原因", "By cause"), "intervals": ("区间", "Intervals"),
    "why": ("结论依据", "Why"), "no_violation": ("无违规", "no violation"), "none": ("无", "none"),
    "violation": ("违规", "violation"), "more": ("更多, 见 JSON 报告", "more: see the JSON report"),
    "complete_on": ("窗口将于 {at} 完整，目前合规", "the window is complete on {at}; compliant so far"),
    "not_checked": ("未核查", "not yet checked"), "unverified": ("未核查", "unverified"),
    "objects": ("个对象", "objects"), "held": ("法律保全", "held"),
    "deleted_before_floor": ("期限前删除", "deleted before floor"), "violating": ("违规区间", "violating intervals"),
    "digest": ("报告摘要 (JSON 报告的 SHA-256)", "Report digest (SHA-256 of the JSON report)"),
    "auditor": ("审核人", "Auditor"), "grid_head": ("网格长", "Grid head"), "date": ("日期", "Date"),
    "timeline": ("覆盖时间轴", "coverage timeline"),
}


def _images_text(a: PointAudit, w: Callable[[str], str]) -> str:
    if a.images is None:
        return w("not_checked")
    i = a.images
    margin = margin_text(i.min_lock_margin_seconds, w("unverified"))
    return (f"{i.objects} {w('objects')} · {w('min_lock_margin')} {margin}"
            f" · {w('held')} {i.held} · {w('deleted_before_floor')} {i.deleted_before_floor}")


def render_html(audits: list[PointAudit], generated_at: datetime, settings: Settings, lang: str = "zh") -> str:
    """The printable report in one language (``zh``, the default, or ``en``): every word, cause, tier and verdict
    localised; gap details are shown as recorded (evidence, marked ``verbatim``)."""
    if lang not in LANGS:
        raise ValueError(f"report language must be one of {', '.join(LANGS)}, got {lang!r}")
    index = LANGS.index(lang)
    esc = html.escape

    def w(key: str, **values: object) -> str:
        return esc(WORDS[key][index].format(**values))

    def name(pairs: dict[str, tuple[str, str]], code: str) -> str:
        return esc(pairs[code][index]) if code in pairs else esc(code)

    def cause(code: str) -> str:
        return name(CAUSE_NAMES, code)

    def finding(code: str) -> str:
        return f"{w('violating')}: {cause(code[4:])}" if code.startswith("gap:") else name(FINDING_NAMES, code)

    def when(moment: datetime) -> str:
        return esc(local_text(moment, tz))

    tz = settings.timezone
    data = to_data(audits, generated_at, settings)
    grids = {g.code: g for g in settings.grids}
    names = {c.id: c.name for c in settings.cameras}
    s = summary(audits)
    grid_rows = "".join(
        f"<tr><td>{esc(code)} {esc(grids[code].name if code in grids else '')}</td><td>{b['compliant']}/{b['points']}"
        f"</td><td>{100 * b['coverage']:.2f}%</td></tr>" for code, b in s["by_grid"].items())
    tier_rows = "".join(f"<tr><td>{name(TIER_NAMES, t)}</td><td>{b['compliant']}/{b['points']}</td>"
                        f"<td>{100 * b['coverage']:.2f}%</td></tr>" for t, b in s["by_tier"].items())
    def verbatim(detail: str) -> str:  # a recorded detail, shown as it was written
        return f' — <q class="verbatim">{esc(detail)}</q>' if detail else ""

    points = []
    for a in audits:
        by_cause = "".join(f"<li>{cause(c)}: {hms(sec)}</li>" for c, sec in gaps_by_cause(a).items())
        gaps = "".join(
            f"<li class='{'violation' if g.violation else 'explained'}'>{cause(str(g.cause))}: "
            f"{when(g.start)} – {when(g.end)} ({hms(g.seconds)})"
            f"{' ⚠ ' + w('violation') if g.violation else ''}"
            f"{verbatim(g.detail)}</li>"
            for g in a.gaps[:200]) or f"<li>{w('none')}</li>"
        if len(a.gaps) > 200:
            gaps += f"<li>… {len(a.gaps) - 200} {w('more')}</li>"
        why = "".join(f"<li>{finding(f.code)}{verbatim(f.detail)}</li>" for f in a.findings)
        complete = f"<br>{w('complete_on', at=local_text(a.complete_at, tz))}" if a.complete_at else ""
        checked = when(a.locks_checked_at) if a.locks_checked_at else w("not_checked")
        points.append(f"""
<section class="point {'ok' if a.compliant else 'bad'}">
<h3>{esc(a.camera)} {esc(names.get(a.camera, ''))} — {name(VERDICT_NAMES, verdict_key(a))}</h3>
<table class="facts">
<tr><th>{w('grid')}</th><td>{esc(a.grid)} {esc(grids[a.grid].name if a.grid in grids else '')}</td>
<th>{w('tier')}</th><td>{name(TIER_NAMES, a.tier)}</td></tr>
<tr><th>{w('window')}</th><td colspan="3">{when(a.window_start)} – {when(a.window_end)}
({hms(a.required_seconds)}){complete}</td></tr>
<tr><th>{w('coverage')}</th><td>{100 * a.coverage:.3f}% ({hms(a.covered_seconds)})</td>
<th>{w('min_lock_margin')}</th><td>{esc(margin_text(a.min_lock_margin_seconds, WORDS['unverified'][index]))}</td></tr>
<tr><th>{w('objects_checked')}</th><td>{checked}</td><th>{w('images')}</th><td>{_images_text(a, w)}</td></tr>
</table>
{timeline_svg(a, tz, label=WORDS['timeline'][index], cause_name=cause)}
<p>{w('by_cause')}:</p><ul class="causes">{by_cause or f'<li>{w("none")}</li>'}</ul>
<p>{w('intervals')}:</p><ul class="gaps">{gaps}</ul>
<p>{w('why')}: {'<ul>' + why + '</ul>' if why else w('no_violation')}</p>
</section>""")
    legend = " ".join(f"<span class='swatch' style='background:{c}'></span> {cause(k)}"
                      for k, c in CAUSE_COLOURS.items())
    rule = "".join(f"<li>{esc(pair[index])}</li>" for pair in RULE_LINES)
    settle = audits[0].settle_seconds if audits else 0.0
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{w('title')}</title>
<style>
body {{ font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; margin: 2em; color: #222;
 -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #999; padding: 3px 6px; text-align: left; }}
section.point {{ border: 1px solid #bbb; margin: 1em 0; padding: 0.5em 1em; break-inside: avoid; }}
section.bad {{ background: #fbeaea; }} .violation {{ color: #a00; }} .timeline {{ display: block; margin: 6px 0; }}
.swatch {{ display: inline-block; width: 1em; height: 1em; vertical-align: middle; }}
.signatures {{ margin-top: 3em; display: flex; gap: 4em; }} .signatures div {{ border-top: 1px solid #000;
 width: 14em; padding-top: 4px; }} .digest {{ font-family: monospace; word-break: break-all; }}
q.verbatim {{ quotes: none; font-size: 90%; color: #555; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head><body>
<h1>{w('title')}<br><small>{STANDARD}</small></h1>
<p>{w('site')}: <code>{esc(settings.site)}</code> · {w('timezone')}: <code>{esc(tz)}</code><br>
{w('generated')}: {when(generated_at)}<br>
{w('settle')}: {hms(settle)} ({w('settle_note', grace=settings.retention.upload_grace_minutes)})<br>
{w('result')}: {s['compliant']}/{s['points']} {w('points_compliant')};
 {w('mean_coverage')} {100 * s['coverage']:.2f}%</p>
<h2>{w('rule')}</h2><ol class="rule">{rule}</ol>
<h2>{w('summary')}</h2>
<table><thead><tr><th>{w('grid')}</th><th>{w('compliant')}</th><th>{w('coverage')}</th></tr></thead>
<tbody>{grid_rows}</tbody></table>
<table><thead><tr><th>{w('tier')}</th><th>{w('compliant')}</th><th>{w('coverage')}</th></tr></thead>
<tbody>{tier_rows}</tbody></table>
<p>{w('legend')}: <span class='swatch' style='background:#5cb85c'></span> {w('video')} {legend}</p>
<h2>{w('points')}</h2>
{''.join(points)}
<p>{w('digest')}: <code class="digest">{data['sha256']}</code></p>
<div class="signatures"><div>{w('auditor')}</div><div>{w('grid_head')}</div><div>{w('date')}</div></div>
</body></html>
"""
