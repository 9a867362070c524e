"""UI text in Chinese (default) and English; ``?lang=en`` or the ``lang`` cookie picks English.

`TEXT` holds the page words (`translator(lang)` gives the `t(key)` of the templates); `ENUMS` the values the
catalog stores as codes (camera status, gap cause, role, audit action, and the fixed detail sentences the
recorder writes), shown through `label(lang, kind, value)`, so no page shows a raw code. A value missing from
`ENUMS` is shown as it is; tests/dashboard/test_i18n_pages.py renders every page as every role in both languages
and fails on one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from jifang.retention.report import VERDICT_NAMES
from starlette.requests import Request

from jifang.domain import GAP_CAUSE_NAMES
from jifang.tiers import TIER_NAMES

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
    **{f"tier_{code}": names for code, names in TIER_NAMES.items()},
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
    **VERDICT_NAMES,  # compliant, compliant_so_far, non_compliant: the printed report's words
    "coverage": ("覆盖率", "Coverage"),
    "gaps": ("缺失时段", "Gaps"),
    "cause": ("原因", "Cause"),
    "audited_at": ("审计时间", "audited at"),
    "window_complete_on": ("窗口完整于", "window complete on"),
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
    "enabled": ("录像", "Recording"),
    "disabled": ("已停用", "disabled"),
    "recognize": ("识别", "Recognition"),
    "kind_plate": ("车牌", "plates"),
    "kind_face": ("人脸", "faces"),
    "sub_stream": ("子码流 (识别用)", "Sub-stream (recognition)"),
    "site": ("站点 (空: 任意)", "Site (empty: any)"),
    "managed_by_file": ("由配置文件管理", "managed by the configuration file"),
    "managed_by_file_note": ("此点位由配置文件声明: 请修改文件后运行 jifang registry sync, 此处的修改会被覆盖。",
                             "This point is declared in the configuration file: change the file and run "
                             "'jifang registry sync'; an edit here would be overwritten."),
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
    "segments": ("个片段", "segments"),
    "camera_id_short": ("编码", "ID"),
    "evidence_crop": ("目标截图", "crop"),
    "evidence_frame": ("全景图", "frame"),
    "gb_devices": ("国标 GB/T 28181 设备", "GB/T 28181 devices"),
    "gb_device_id": ("设备编码", "Device ID"),
    "gb_channel_id": ("通道编码", "Channel ID"),
    "gb_device_state": ("在线状态", "State"),
    "gb_online": ("在线", "online"),
    "gb_offline": ("离线", "offline"),
    "gb_last_keepalive": ("最后心跳", "Last keepalive"),
    "seconds_ago": ("秒前", "s ago"),
    "gb_address": ("信令地址", "SIP address"),
    "gb_registered_until": ("注册有效期至", "Registered until"),
    "gb_reported": ("设备上报状态", "Reported by the device"),
    "gb_media": ("媒体状态", "Media"),
    "since": ("自", "since"),
    "gb_none": ("尚无国标设备。添加设备后, 设备即可注册:",
                "No GB/T 28181 device yet. Add one, then it can register:"),
    "gb_assign_note": ("未分配网格和等级的通道只列出、不录像。分配:",
                       "Channels without a grid and tier are listed, not recorded. Assign one:"),
}

ENUMS: dict[str, dict[str, tuple[str, str]]] = {
    "status": {  # jifang.registry.STATUSES
        "unknown": ("未知", "unknown"),
        "online": ("在线", "online"),
        "auth_failed": ("认证失败", "authentication failed"),
        "unreachable": ("无法连接", "unreachable"),
        "clock_skew": ("时钟偏差", "clock skew"),
    },
    "cause": {str(cause): names for cause, names in GAP_CAUSE_NAMES.items()},  # jifang.domain.GapCause
    "role": {  # jifang.dashboard.options.ROLES
        "admin": ("管理员", "administrator"),
        "technician": ("技术员", "technician"),
        "supervisor": ("监管人员", "supervisor"),
        "grid_worker": ("网格员", "grid worker"),
    },
    "action": {  # audit log actions (dashboard and `jifang user`)
        "login": ("登录", "log in"),
        "login_failed": ("登录失败", "failed login"),
        "logout": ("退出", "log out"),
        "user_add": ("添加用户", "user added"),
        "user_disable": ("停用用户", "user disabled"),
        "user_passwd": ("修改密码", "password changed"),
        "camera_add": ("登记摄像机", "camera registered"),
        "camera_edit": ("修改摄像机", "camera edited"),
        "export": ("导出", "export"),
        "view_image": ("调阅图片", "image viewed"),
        "view_live": ("查看实时画面", "live view"),
        "view_video": ("调阅视频", "video viewed"),
    },
    "media": {  # jifang.dashboard.devices.MEDIA_STATES: a GB/T 28181 channel's media
        "unassigned": ("未分配 (不录像)", "unassigned (not recorded)"),
        "disabled": ("已停用", "disabled"),
        "receiving": ("正在接收", "receiving"),
        "down": ("中断", "down"),
        "waiting": ("等待首个片段", "waiting for the first segment"),
    },
    "reported": {  # a channel's Status in the device's Catalog
        "ON": ("在线", "on"),
        "OFF": ("离线", "off"),
        "": ("-", "-"),
    },
    "actor": {  # who acted, when it was not a person
        "system": ("系统", "system"),
    },
    "detail": {  # fixed sentences written by the recorder and the web layer
        "no recorder was running for this camera": ("该摄像机没有运行中的录像进程", "no recorder was running for "
                                                    "this camera"),
        "forbidden": ("无权访问", "forbidden"),
        "not found": ("未找到", "not found"),
        "not found or expired": ("未找到或已过期", "not found or expired"),
        "login required": ("请先登录", "login required"),
    },
}

# Times are shown in the site's local time with its offset. Zhejiang (and all of China) keeps UTC+8 all year.
SITE_TZ = timezone(timedelta(hours=8))


def pick(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LANGS else "zh"


def label(lang: str, kind: str, value: object) -> str:
    """A stored code (camera status, gap cause, role, audit action, fixed detail) in the page's language."""
    text = "" if value is None else str(value)
    pair = ENUMS.get(kind, {}).get(text)
    return pair[LANGS.index(lang)] if pair else text


def local_time(moment: datetime | str | None) -> str:
    """A moment (a datetime, or ISO 8601 text from a JSON document) in the site's time, with the offset."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the catalog stores UTC
    return moment.astimezone(SITE_TZ).strftime("%Y-%m-%d %H:%M:%S %z").replace("+0800", "+08:00")


def translator(lang: str) -> Callable[[str], str]:
    index = LANGS.index(lang)

    def t(key: str) -> str:
        pair = TEXT.get(key)
        return pair[index] if pair else key

    return t
