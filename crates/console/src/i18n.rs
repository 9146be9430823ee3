//! The console's words in Chinese (the default) and English: the language is the
//! toggle's choice, else the browser's `Accept-Language`, else zh-CN.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::session::{cookie, LANG_COOKIE};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The toggle's path segment.
    pub fn slug(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Lang> {
        match slug {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The language of an `Accept-Language` value: English if the browser prefers it
    /// to Chinese, else Chinese.
    pub fn from_accept(accept: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else if tag == "zh" || tag.starts_with("zh-") {
                Lang::Zh
            } else {
                continue;
            };
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, lang)| lang)
    }

    /// The language of a request: the toggle's cookie, else `Accept-Language`.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Lang {
        let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
        if let Some(lang) = cookies.and_then(|c| cookie(c, LANG_COOKIE)).and_then(Lang::from_slug) {
            return lang;
        }
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        accept.map_or(Lang::Zh, Lang::from_accept)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_headers(&parts.headers))
    }
}

/// Every word the console shows.
#[derive(Debug)]
pub struct Texts {
    pub console: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub token: &'static str,
    pub token_hint: &'static str,
    pub signed_in_as: &'static str,
    pub switch_language: &'static str,
    pub operations: &'static str,
    pub satisfaction: &'static str,
    pub summary: &'static str,
    pub case_file: &'static str,
    pub customers: &'static str,
    pub callbacks: &'static str,
    pub open_by_stage: &'static str,
    pub stage: &'static str,
    pub severity: &'static str,
    pub count: &'static str,
    pub ageing: &'static str,
    pub workload: &'static str,
    pub workload_withheld: &'static str,
    pub staff: &'static str,
    pub active: &'static str,
    pub open_cases: &'static str,
    pub open_major_cases: &'static str,
    pub customers_held: &'static str,
    pub breaches: &'static str,
    pub first_response: &'static str,
    pub callback_overdue: &'static str,
    pub new_customer_not_contacted: &'static str,
    pub resolution_overdue: &'static str,
    pub request_first_response: &'static str,
    pub request_callback_overdue: &'static str,
    pub sla_items: &'static str,
    pub sla_items_refused: &'static str,
    pub rule: &'static str,
    pub state: &'static str,
    pub at_risk: &'static str,
    pub breached: &'static str,
    pub case_number: &'static str,
    pub owner: &'static str,
    pub due_at: &'static str,
    pub live: &'static str,
    pub none: &'static str,
    pub by_month: &'static str,
    pub by_handler: &'static str,
    pub by_channel: &'static str,
    pub by_category: &'static str,
    pub satisfaction_rate: &'static str,
    pub dissatisfaction_rate: &'static str,
    pub average_score: &'static str,
    pub responses: &'static str,
    pub coverage: &'static str,
    pub group: &'static str,
    pub covered: &'static str,
    pub rate: &'static str,
    pub target: &'static str,
    pub month: &'static str,
    pub show: &'static str,
    pub complaints: &'static str,
    pub by_cause: &'static str,
    pub by_severity: &'static str,
    pub top_causes: &'static str,
    pub trend: &'static str,
    pub resolution_times: &'static str,
    pub first_response_median: &'static str,
    pub first_response_p90: &'static str,
    pub close_median: &'static str,
    pub close_p90: &'static str,
    pub hours: &'static str,
    pub reopened: &'static str,
    pub download_csv: &'static str,
    pub open_case: &'static str,
    pub timeline: &'static str,
    pub verification: &'static str,
    pub intact: &'static str,
    pub broken: &'static str,
    pub events: &'static str,
    pub head_hash: &'static str,
    pub dossier: &'static str,
    pub recorded_as_inspection: &'static str,
    pub state_only: &'static str,
    pub status: &'static str,
    pub handler: &'static str,
    pub respondent: &'static str,
    pub recused: &'static str,
    pub signer: &'static str,
    pub policy_version: &'static str,
    pub received_at: &'static str,
    pub first_response_due: &'static str,
    pub resolution_due: &'static str,
    pub callback_due: &'static str,
    pub closed_at: &'static str,
    pub version: &'static str,
    pub recorded_at: &'static str,
    pub event: &'static str,
    pub actor: &'static str,
    pub details: &'static str,
    pub redacted: &'static str,
    pub search: &'static str,
    pub search_by: &'static str,
    pub by_any: &'static str,
    pub by_phone: &'static str,
    pub by_email: &'static str,
    pub by_name: &'static str,
    pub name: &'static str,
    pub tier: &'static str,
    pub agent: &'static str,
    pub matched: &'static str,
    pub customer: &'static str,
    pub registered_at: &'static str,
    pub last_callback: &'static str,
    pub cases_of_customer: &'static str,
    pub due_callbacks: &'static str,
    pub kind: &'static str,
    pub overdue: &'static str,
    pub referrals: &'static str,
    pub referrer: &'static str,
    pub referred: &'static str,
    pub still_customers: &'static str,
    pub contacted: &'static str,
    pub refused: &'static str,
    pub not_found: &'static str,
    pub bad_request: &'static str,
    pub signed_out: &'static str,
    pub too_many: &'static str,
    pub unavailable: &'static str,
    pub failed: &'static str,
    pub token_refused: &'static str,
    pub form_expired: &'static str,
    pub business_time_zone: &'static str,
}

pub static ZH: Texts = Texts {
    console: "客服控制台",
    sign_in: "登录",
    sign_out: "退出",
    token: "访问令牌",
    token_hint: "粘贴您的访问令牌(Bearer token)",
    signed_in_as: "当前用户",
    switch_language: "English",
    operations: "运营看板",
    satisfaction: "满意度",
    summary: "月度汇总",
    case_file: "案卷",
    customers: "客户",
    callbacks: "回访与推荐",
    open_by_stage: "未结案件(按阶段与严重程度)",
    stage: "阶段",
    severity: "严重程度",
    count: "数量",
    ageing: "案龄",
    workload: "处理人工作量",
    workload_withheld: "按人员的数据不向您的角色提供(仅汇总)",
    staff: "人员",
    active: "在职",
    open_cases: "未结案件",
    open_major_cases: "未结重大案件",
    customers_held: "负责客户",
    breaches: "超时(SLA)",
    first_response: "首次响应超过时限",
    callback_overdue: "回访逾期",
    new_customer_not_contacted: "新客户未按时联系",
    resolution_overdue: "办结逾期",
    request_first_response: "服务请求首次响应超时",
    request_callback_overdue: "售后回访逾期",
    sla_items: "临近与已超时事项",
    sla_items_refused: "逐条事项不向您的角色提供",
    rule: "规则",
    state: "状态",
    at_risk: "临近超时",
    breached: "已超时",
    case_number: "案号",
    owner: "负责人",
    due_at: "期限",
    live: "实时",
    none: "无",
    by_month: "按月",
    by_handler: "按处理人",
    by_channel: "按渠道",
    by_category: "按类别",
    satisfaction_rate: "满意率",
    dissatisfaction_rate: "不满意率",
    average_score: "平均评分",
    responses: "回访数",
    coverage: "回访覆盖率(对照目标)",
    group: "客户组",
    covered: "已回访",
    rate: "覆盖率",
    target: "目标",
    month: "月份",
    show: "查看",
    complaints: "投诉总数",
    by_cause: "按原因",
    by_severity: "按严重程度",
    top_causes: "主要原因及趋势",
    trend: "近六个月",
    resolution_times: "处理时长",
    first_response_median: "首次响应中位数",
    first_response_p90: "首次响应 P90",
    close_median: "办结中位数",
    close_p90: "办结 P90",
    hours: "小时",
    reopened: "重新打开",
    download_csv: "下载 CSV",
    open_case: "打开案卷",
    timeline: "时间线(事件回放)",
    verification: "哈希链校验",
    intact: "完整",
    broken: "已损坏",
    events: "事件数",
    head_hash: "链首哈希",
    dossier: "导出卷宗(JSON)",
    recorded_as_inspection: "本次查阅已记录为一次审阅",
    state_only: "案件当前状态；时间线、哈希链校验和案卷导出仅限合规审查角色",
    status: "状态",
    handler: "处理人",
    respondent: "被投诉人",
    recused: "已回避",
    signer: "签署人",
    policy_version: "政策版本",
    received_at: "受理时间",
    first_response_due: "首次响应期限",
    resolution_due: "办结期限",
    callback_due: "回访期限",
    closed_at: "结案时间",
    version: "版本",
    recorded_at: "记录时间",
    event: "事件",
    actor: "操作人",
    details: "内容",
    redacted: "已遮蔽",
    search: "搜索",
    search_by: "按",
    by_any: "自动",
    by_phone: "电话",
    by_email: "邮箱",
    by_name: "姓名",
    name: "姓名",
    tier: "等级",
    agent: "客户经理",
    matched: "匹配",
    customer: "客户",
    registered_at: "登记时间",
    last_callback: "最近回访",
    cases_of_customer: "该客户的案件",
    due_callbacks: "待回访",
    kind: "类型",
    overdue: "已逾期",
    referrals: "推荐报表",
    referrer: "推荐人",
    referred: "推荐客户数",
    still_customers: "仍为客户",
    contacted: "已联系",
    refused: "无权访问",
    not_found: "未找到",
    bad_request: "请求有误",
    signed_out: "您已退出登录",
    too_many: "尝试过于频繁",
    unavailable: "服务暂不可用",
    failed: "出错了",
    token_refused: "令牌无效",
    form_expired: "表单已过期,请重试",
    business_time_zone: "业务时区",
};

pub static EN: Texts = Texts {
    console: "kefu console",
    sign_in: "Sign in",
    sign_out: "Sign out",
    token: "Access token",
    token_hint: "Paste your bearer token",
    signed_in_as: "Signed in as",
    switch_language: "中文",
    operations: "Operations",
    satisfaction: "Satisfaction",
    summary: "Monthly summary",
    case_file: "Case file",
    customers: "Customers",
    callbacks: "Callbacks & referrals",
    open_by_stage: "Open cases by stage and severity",
    stage: "Stage",
    severity: "Severity",
    count: "Count",
    ageing: "Ageing",
    workload: "Handler workload",
    workload_withheld: "Per-staff rows are withheld from your role (aggregates only)",
    staff: "Staff",
    active: "Active",
    open_cases: "Open cases",
    open_major_cases: "Open major cases",
    customers_held: "Customers",
    breaches: "SLA breaches",
    first_response: "First response late",
    callback_overdue: "Callback overdue",
    new_customer_not_contacted: "New customer not contacted",
    resolution_overdue: "Resolution overdue",
    request_first_response: "Request first response late",
    request_callback_overdue: "After-sales callback overdue",
    sla_items: "Items at risk and breached",
    sla_items_refused: "Item rows are not available to your role",
    rule: "Rule",
    state: "State",
    at_risk: "At risk",
    breached: "Breached",
    case_number: "Case",
    owner: "Owner",
    due_at: "Due",
    live: "Live",
    none: "None",
    by_month: "By month",
    by_handler: "By handler",
    by_channel: "By channel",
    by_category: "By category",
    satisfaction_rate: "Satisfaction rate",
    dissatisfaction_rate: "Dissatisfaction rate",
    average_score: "Average score",
    responses: "Responses",
    coverage: "Callback coverage against targets",
    group: "Group",
    covered: "Covered",
    rate: "Rate",
    target: "Target",
    month: "Month",
    show: "Show",
    complaints: "Complaints",
    by_cause: "By cause",
    by_severity: "By severity",
    top_causes: "Top causes and their trend",
    trend: "Last six months",
    resolution_times: "Resolution times",
    first_response_median: "First response, median",
    first_response_p90: "First response, P90",
    close_median: "Closing, median",
    close_p90: "Closing, P90",
    hours: "hours",
    reopened: "Reopened",
    download_csv: "Download CSV",
    open_case: "Open a case file",
    timeline: "Timeline (replay)",
    verification: "Hash-chain verification",
    intact: "Intact",
    broken: "Broken",
    events: "Events",
    head_hash: "Head hash",
    dossier: "Export the dossier (JSON)",
    recorded_as_inspection: "This view was recorded as an inspection",
    state_only:
        "The case as it stands; the timeline, the chain check and the dossier are for compliance",
    status: "Status",
    handler: "Handler",
    respondent: "Respondent",
    recused: "Recused",
    signer: "Signer",
    policy_version: "Policy version",
    received_at: "Received",
    first_response_due: "First response due",
    resolution_due: "Resolution due",
    callback_due: "Callback due",
    closed_at: "Closed",
    version: "Version",
    recorded_at: "Recorded",
    event: "Event",
    actor: "Actor",
    details: "Details",
    redacted: "redacted",
    search: "Search",
    search_by: "By",
    by_any: "Any",
    by_phone: "Phone",
    by_email: "Email",
    by_name: "Name",
    name: "Name",
    tier: "Tier",
    agent: "Agent",
    matched: "Matched",
    customer: "Customer",
    registered_at: "Registered",
    last_callback: "Last callback",
    cases_of_customer: "This customer's cases",
    due_callbacks: "Due callbacks",
    kind: "Kind",
    overdue: "Overdue",
    referrals: "Referral report",
    referrer: "Referrer",
    referred: "Referred",
    still_customers: "Still customers",
    contacted: "Contacted",
    refused: "Not allowed",
    not_found: "Not found",
    bad_request: "Bad request",
    signed_out: "You are signed out",
    too_many: "Too many attempts",
    unavailable: "Unavailable",
    failed: "Something went wrong",
    token_refused: "The token was not accepted",
    form_expired: "The form expired; please try again",
    business_time_zone: "Business time zone",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_unless_the_browser_prefers_english() {
        assert_eq!(Lang::from_accept(""), Lang::Zh);
        assert_eq!(Lang::from_accept("fr-FR"), Lang::Zh);
        assert_eq!(Lang::from_accept("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(Lang::from_accept("en;q=0.5,zh-TW;q=0.4"), Lang::En);
        assert_eq!(Lang::from_accept("zh;q=0.2, en;q=0.7"), Lang::En);
    }
}
