"""Labels for the human-facing reports (terminal tables, HTML), in English and Vietnamese.

The department's staff read Vietnamese; the ministry's CSV keeps its English contract headers, and offers
the Vietnamese ones (`CSV_COLUMNS_VI`) only behind an explicit option. Verdict, method and confidence
values stay as stored in machine formats; here they get display labels.

Numbers and dates in each language's convention are auditor.report.formatting's `fmt_*`.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "vi"]
LANGS: tuple[Lang, ...] = ("en", "vi")

# key -> (English, Vietnamese)
LABELS: dict[str, tuple[str, str]] = {
    # the run
    "report_title": ("Content-filter compliance report", "Báo cáo tuân thủ chặn lọc nội dung"),
    "province": ("Province", "Tỉnh"),
    "run": ("Run", "Lượt kiểm tra"),
    "started": ("Started", "Bắt đầu"),
    "status": ("Status", "Trạng thái"),
    "status_complete": ("complete", "hoàn tất"),
    "status_partial": ("partial", "chưa hoàn tất"),
    "status_running": ("running or interrupted", "đang chạy hoặc bị ngắt"),
    "grace_hours": ("Grace period (hours)", "Thời gian ân hạn (giờ)"),
    "timezone": ("Time zone", "Múi giờ"),
    # per provider
    "summary": ("Compliance per provider", "Tuân thủ theo nhà mạng"),
    "provider": ("Provider", "Nhà mạng"),
    "asn": ("ASN", "ASN"),
    "measured": ("Measured", "Đã đo"),
    "yes": ("yes", "có"),
    "no": ("no", "không"),
    "urls": ("URLs", "Số URL"),
    "blocked": ("Blocked", "Bị chặn"),
    "accessible": ("Accessible", "Truy cập được"),
    "inconclusive": ("Inconclusive", "Không kết luận"),
    "in_grace": ("In grace", "Đang ân hạn"),
    "compliance_pct": ("Compliance %", "Tỷ lệ tuân thủ %"),
    "violations": ("Violations", "Vi phạm"),
    "sla_breaches": ("SLA breaches", "Quá hạn chặn"),
    "median_hours_to_block": ("Median hours to block", "Số giờ chặn (trung vị)"),
    "newly_accessible": ("Newly accessible", "Mới truy cập được"),
    "persistent_violations": ("Persistent violations", "Vi phạm kéo dài"),
    "must_block_failed": ("Must-block failed", "Lọt URL bắt buộc chặn"),
    "overblocked": ("Over-blocked", "Chặn nhầm"),
    "not_measured": ("not measured", "không đo được"),
    "flagged": ("FLAGGED", "BỊ GẮN CỜ"),
    "flagged_reason": (
        "let a must-block test URL through: flagged whatever its score",
        "để lọt URL kiểm tra bắt buộc chặn: bị gắn cờ bất kể tỷ lệ tuân thủ",
    ),
    "summary_caption": (
        "compliance % = blocked / (blocked + accessible), entries in grace and must-allow URLs left out",
        "tỷ lệ tuân thủ = bị chặn / (bị chặn + truy cập được), không tính URL đang ân hạn và URL phải cho phép",
    ),
    # trend and categories
    "trend": ("Trend", "Xu hướng"),
    "trend_title": ("Compliance trend, last {n} runs", "Xu hướng tuân thủ, {n} lượt gần nhất"),
    "per_category": ("Compliance per category", "Tuân thủ theo danh mục"),
    "per_list": ("Compliance per list", "Tuân thủ theo danh sách"),
    "category": ("Category", "Danh mục"),
    "list": ("List", "Danh sách"),
    "no_category": ("(no category)", "(không có danh mục)"),
    # findings
    "url": ("URL", "URL"),
    "date_added": ("Date added", "Ngày thêm"),
    "evidence": ("Evidence", "Bằng chứng"),
    "verdict": ("Verdict", "Kết quả"),
    "method": ("Method", "Phương thức"),
    "confidence": ("Confidence", "Độ tin cậy"),
    "violations_title": ("Violations: listed URLs that were accessible", "Vi phạm: URL trong danh sách vẫn truy cập được"),
    "sla_title": ("SLA breaches: still accessible after the grace period", "Quá hạn chặn: vẫn truy cập được sau thời gian ân hạn"),
    "hours_since_added": ("Hours since added", "Số giờ từ khi thêm"),
    "hours_overdue": ("Hours overdue", "Số giờ quá hạn"),
    "regressions": ("Regressions", "Suy giảm"),
    "newly_title": ("Newly accessible: blocked in the previous run, accessible now",
                    "Mới truy cập được: bị chặn ở lượt trước, nay truy cập được"),
    "previous_run": ("Previous run", "Lượt trước"),
    "persistent_title": ("Persistent violations: accessible {n} runs in a row or more",
                         "Vi phạm kéo dài: truy cập được từ {n} lượt liên tiếp trở lên"),
    "runs_in_a_row": ("Runs in a row", "Số lượt liên tiếp"),
    "since": ("Since", "Từ"),
    "must_block_title": ("Must-block test URLs let through", "URL kiểm tra bắt buộc chặn bị lọt"),
    "overblocked_title": ("Over-blocking: must-allow URLs that were blocked", "Chặn nhầm: URL phải cho phép nhưng bị chặn"),
    "none": ("none", "không có"),
    "details": ("Details", "Chi tiết"),
    "shown_of": ("first {shown} of {total} shown", "hiển thị {shown} trên tổng {total}"),
    "not_measured_note": ("{provider} not measured: {reason}", "{provider} không đo được: {reason}"),
    "rejudged_note": ("Re-judged from run {run_id}: today's rules on that run's stored observations",
                      "Đánh giá lại từ lượt {run_id}: quy tắc hiện hành áp dụng cho dữ liệu đo đã lưu của lượt đó"),
    "table_title": ("Compliance, run {run_id} ({province}, started {started})",
                    "Tuân thủ, lượt {run_id} ({province}, bắt đầu {started})"),
    "table_caption": ("compliance % = blocked / (blocked + accessible), entries in grace left out",
                      "tỷ lệ tuân thủ = bị chặn / (bị chặn + truy cập được), không tính URL đang ân hạn"),
    "no_violations": ("no violations", "không có vi phạm"),
    "violations_one": ("{total} violation", "{total} vi phạm"),
    "violations_many": ("{total} violations", "{total} vi phạm"),
    "violations_first": ("{total} violations, first {limit} shown", "{total} vi phạm, hiển thị {limit} đầu tiên"),
    "findings_title": ("Findings per provider (trend: last {n} runs)",
                       "Phát hiện theo nhà mạng (xu hướng: {n} lượt gần nhất)"),
    "history_title": ("Compliance over the last {days} days", "Tuân thủ trong {days} ngày qua"),
    "no_runs": ("no run in this period", "không có lượt kiểm tra nào trong khoảng này"),
    "runs": ("Runs", "Số lượt"),
    "latest": ("Latest", "Gần nhất"),
    "lowest": ("Lowest", "Thấp nhất"),
    "change": ("Change", "Thay đổi"),
    "generated_by": ("Generated by auditor from the run's stored measurements.",
                     "Tạo bởi auditor từ kết quả đo đã lưu của lượt kiểm tra."),
    # verdict and method display values
    "verdict_blocked": ("blocked", "bị chặn"),
    "verdict_accessible": ("accessible", "truy cập được"),
    "verdict_inconclusive": ("inconclusive", "không kết luận"),
    "confidence_confirmed": ("confirmed", "xác nhận"),
    "confidence_likely": ("likely", "có khả năng"),
    "method_dns": ("DNS", "DNS"),
    "method_tcp": ("TCP/IP", "TCP/IP"),
    "method_tls": ("TLS/SNI", "TLS/SNI"),
    "method_http": ("HTTP", "HTTP"),
}

# The ministry CSV's contract column names -> Vietnamese headers (only with an explicit option).
CSV_COLUMNS_VI: dict[str, str] = {
    "run_id": "Mã lượt kiểm tra",
    "measured_at": "Thời điểm đo",
    "started_at": "Bắt đầu",
    "province": "Tỉnh",
    "provider_id": "Mã nhà mạng",
    "provider_name": "Tên nhà mạng",
    "asn": "ASN",
    "measured": "Đã đo",
    "urls_total": "Tổng số URL",
    "blocked": "Bị chặn",
    "accessible": "Truy cập được",
    "inconclusive": "Không kết luận",
    "compliance_pct": "Tỷ lệ tuân thủ (%)",
    "list": "Danh sách",
    "url": "URL",
    "category_code": "Mã danh mục",
    "date_added": "Ngày thêm",
    "verdict": "Kết quả",
    "method": "Phương thức",
    "confidence": "Độ tin cậy",
    "evidence": "Bằng chứng",
    "sla_breaches": "Quá hạn chặn",
    "median_hours_to_block": "Số giờ chặn (trung vị)",
    "newly_accessible": "Mới truy cập được",
    "must_block_failed": "Lọt URL bắt buộc chặn",
    "overblocked": "Chặn nhầm",
    "vantage_lost": "Số cặp mất do điểm đo lỗi",
}


def check_lang(lang: str) -> Lang:
    for known in LANGS:
        if lang == known:
            return known
    raise ValueError(f"unknown language {lang!r}: one of {', '.join(LANGS)}")


def t(key: str, lang: str = "en", **fmt: object) -> str:
    """The label `key` in `lang`, formatted with `fmt`."""
    text = LABELS[key][LANGS.index(check_lang(lang))]
    return text.format(**fmt) if fmt else text


def verdict_label(verdict: str, lang: str = "en") -> str:
    return t(f"verdict_{verdict}", lang)


def method_label(method: str | None, lang: str = "en") -> str:
    return t(f"method_{method}", lang) if method else ""


def confidence_label(confidence: str | None, lang: str = "en") -> str:
    return t(f"confidence_{confidence}", lang) if confidence else ""
