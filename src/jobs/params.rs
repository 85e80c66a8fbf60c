//! Small rules every job kind shares: string lengths and the clock.

use super::JobError;

/// Refuses strings longer than `max` characters.
pub fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), JobError> {
    if value.chars().count() > max {
        return Err(JobError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
