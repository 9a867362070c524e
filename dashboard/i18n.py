"""UI text in Chinese (default) and English; ``?lang=en`` or the ``lang`` cookie picks English."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANGS = ("zh", "en")
LANG_COOKIE = "lang"

TEXT: dict[str, tuple[str, str]] = {
    "app": ("技防管理平台", "jifang dashboard"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误", "Wrong user name or password"),
    "login_throttled": ("登录失败次数过多，请15分钟后再试", "Too many failed logins; try again in 15 minutes"),
    "cameras": ("摄像机", "Cameras"),
    "incidents": ("事件", "Incidents"),
    "retention": ("存储合规", "Retention"),
    "audit": ("审计日志", "Audit log"),
    "register": ("登记摄像机", "Register a camera"),
    "endpoint": ("ONVIF 地址 (主机:端口)", "ONVIF address (host:port)"),
    "camera_id": ("设备编码 (20位)", "Device ID (20 digits)"),
    "name": ("点位名称", "Point name"),
    "grid": ("网格", "Grid"),
    "tier": ("存储等级", "Tier"),
    "tier_key": ("重点涉恐涉稳点位", "key point"),
    "tier_important": ("重要部位", "important location"),
    "tier_general": ("一般点位", "general"),
    "location": ("位置", "Location"),
    "signage": ("已设置提示标识", "Signage posted"),
    "purpose": ("用途", "Purpose"),
    "status": ("状态", "Status"),
    "edit": ("编辑", "Edit"),
    "save": ("保存", "Save"),
    "manufacturer": ("厂商", "Manufacturer"),
    "model": ("型号", "Model"),
    "registered": ("已登记", "Registered"),
    "category": ("类别", "Category"),
    "subcategory": ("子类", "Sub-category"),
    "state": ("状态", "State"),
    "all": ("全部", "All"),
    "filter": ("筛选", "Filter"),
    "time": ("时间", "Time"),
    "camera": ("摄像机", "Camera"),
    "summary": ("摘要", "Summary"),
    "report": ("事件报告 (附录A)", "Incident report (Appendix A)"),
    "evidence": ("证据图片", "Evidence images"),
    "video": ("视频", "Video"),
    "open_video": ("调阅视频", "Open video"),
    "workflow": ("处理流程", "Workflow"),
    "next_step": ("下一步", "Next step"),
    "note": ("备注", "Note"),
    "assignee": ("分派给", "Assign to"),
    "actor": ("操作人", "By"),
    "print": ("打印", "Print"),
    "recipients": ("推送对象", "Routed to"),
    "compliance": ("合规", "Compliance"),
    "compliant": ("合规", "compliant"),
    "non_compliant": ("不合规", "NON-COMPLIANT"),
    "coverage": ("覆盖率", "Coverage"),
    "gaps": ("缺失时段", "Gaps"),
    "cause": ("原因", "Cause"),
    "compliant_so_far": ("目前合规，窗口未满", "compliant so far"),
    "window_complete_on": ("窗口完整于", "window complete on"),
    "cause_camera_offline": ("摄像机离线", "camera offline"),
    "cause_agent_offline": ("采集代理离线", "no agent recording"),
    "cause_handover": ("代理交接", "lease handover"),
    "cause_store_unavailable": ("存储不可用", "storage unavailable"),
    "cause_clock_step": ("时钟跳变", "clock step"),
    "cause_upload_failed": ("上传失败", "upload failed"),
    "cause_object_missing": ("对象缺失", "object missing"),
    "cause_lock_too_short": ("锁定期不足", "lock too short"),
    "cause_not_recorded": ("无记录且无原因", "unexplained, not recorded"),
    "cause_before_registration": ("登记之前", "before registration"),
    "lock_margin": ("锁定余量", "Lock margin"),
    "printable_report": ("打印审计报告", "Printable audit report"),
    "legal_holds": ("证据锁定", "Legal holds"),
    "reason": ("原因", "Reason"),
    "from": ("起", "From"),
    "to": ("止", "To"),
    "action": ("操作", "Action"),
    "target": ("对象", "Target"),
    "detail": ("详情", "Detail"),
    "purpose_prompt": ("调阅目的 (必填)", "Purpose of viewing (required)"),
    "none": ("无", "none"),
    "forbidden": ("无权访问", "Forbidden"),
    "not_found": ("未找到", "Not found"),
    "error": ("错误", "Error"),
    "newer": ("较新", "Newer"),
    "older": ("更早", "Older"),
    "closed": ("已办结", "Closed"),
    "live": ("实时画面", "Live view"),
    "live_none": ("暂无画面", "No picture yet"),
    "live_note": ("最新录像片段的最后一帧，每5秒刷新", "Last frame of the newest segment, refreshed every 5 s"),
    "health": ("健康记录", "Health history"),
    "ongoing": ("持续中", "ongoing"),
    "timeline": ("覆盖时间轴", "Coverage timeline"),
    "recorded": ("有录像", "recorded"),
    "explained_gap": ("已说明的缺口", "explained gap"),
    "violation": ("违规缺口", "violation"),
    "outside_window": ("不在要求期内", "outside the window"),
    "days": ("天", "days"),
}


def pick(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LANGS else "zh"


def translator(lang: str) -> Callable[[str], str]:
    index = LANGS.index(lang)

    def t(key: str) -> str:
        pair = TEXT.get(key)
        return pair[index] if pair else key

    return t
