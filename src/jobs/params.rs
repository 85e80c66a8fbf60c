//! Typed access to the JSON parameters of an API 3.0 request, with errors
//! that name the field.

use serde_json::Value;

use super::JobError;

/// The parameters of one action (a JSON object).
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    value: &'a Value,
    /// Dotted path of this object for messages (`MediaProcessTask.`).
    prefix: &'a str,
}

impl<'a> Params<'a> {
    /// The top-level parameters.
    pub fn new(value: &'a Value) -> Self {
        Self { value, prefix: "" }
    }

    /// A nested object, its fields named `prefix.Field` in errors.
    pub fn nested(value: &'a Value, prefix: &'a str) -> Self {
        Self { value, prefix }
    }

    fn field(&self, name: &str) -> Option<&'a Value> {
        self.value.get(name).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, name: &str, what: &str) -> JobError {
        JobError::InvalidParameter {
            message: format!("{}{name} must be {what}", self.prefix),
        }
    }

    /// Fails with `MissingParameter` when `name` is absent.
    pub fn require(&self, name: &str) -> Result<&'a Value, JobError> {
        self.field(name).ok_or_else(|| JobError::MissingParameter {
            field: format!("{}{name}", self.prefix),
        })
    }

    /// A string field.
    pub fn string(&self, name: &str) -> Result<Option<String>, JobError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong_type(name, "a string")),
        }
    }

    /// A non-negative integer field.
    pub fn uint(&self, name: &str) -> Result<Option<u64>, JobError> {
        match self.field(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "a non-negative integer")),
        }
    }

    /// An integer field.
    pub fn int(&self, name: &str) -> Result<Option<i64>, JobError> {
        match self.field(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "an integer")),
        }
    }

    /// A number field.
    pub fn number(&self, name: &str) -> Result<Option<f64>, JobError> {
        match self.field(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "a number")),
        }
    }

    /// An array field.
    pub fn array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, JobError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.wrong_type(name, "an array")),
        }
    }

    /// An object field.
    pub fn object(&self, name: &str) -> Result<Option<&'a Value>, JobError> {
        match self.field(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(_) => Err(self.wrong_type(name, "an object")),
        }
    }
}

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

/// Unix milliseconds as API 3.0 writes times: `2019-07-16T15:32:50Z`.
pub fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
