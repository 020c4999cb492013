// TEMP stub until the cienv branch lands.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CiEnv {
    pub provider: Option<&'static str>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub job: Option<String>,
    pub run_id: Option<String>,
    pub attempt: Option<u32>,
    pub started_at: Option<i64>,
}
impl CiEnv {
    pub fn detect() -> CiEnv {
        CiEnv::default()
    }
}
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.timestamp())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .map(|d| d.and_utc().timestamp())
        })
        .map_err(|e| e.to_string())
}
