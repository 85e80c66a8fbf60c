//! Task flows: named procedures (a stored `MediaProcessTask`), run by
//! `ProcessMediaByProcedure` or by an upload — a `[[triggers]]` rule
//! (bucket, key prefix and suffix) or the uploader naming one (the
//! `x-framegate-procedure` header, or the user metadata
//! `framegate-procedure`, which SDKs set through their metadata argument).

use serde_json::{json, Value};

use super::params::{self, iso_time, now_ms, Params};
use super::{file_id, task, JobError, Jobs};

/// The request header that names a procedure on PUT / CompleteMultipartUpload.
pub const PROCEDURE_HEADER: &str = "x-framegate-procedure";
/// The user-metadata key that names a procedure (`x-cos-meta-…`/`x-amz-meta-…`).
pub const PROCEDURE_META: &str = "framegate-procedure";

impl Jobs {
    /// `CreateProcedureTemplate`: `Name`, `Comment`, `MediaProcessTask`
    /// (validated now, templates resolved when it runs).
    pub async fn create_procedure(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let name = p
            .string("Name")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "Name".into(),
            })?;
        if name.is_empty()
            || name.chars().count() > 20
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(JobError::invalid(
                "Name",
                "must be 1 to 20 letters, digits, '_' or '-'",
            ));
        }
        let comment = p.string("Comment")?.unwrap_or_default();
        params::check_len("Comment", &comment, 256)?;
        let task = p
            .object("MediaProcessTask")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "MediaProcessTask".into(),
            })?;
        let all = self.all_templates().await?;
        task::parse_subtasks(task, &mut |kind, def| all.get(&(kind, def)).cloned())?;
        let now = now_ms();
        let body = json!({
            "Name": name, "Comment": comment, "MediaProcessTask": task,
            "CreateMs": now, "UpdateMs": now,
        });
        if !self
            .store
            .insert_procedure(&name, &body.to_string(), now)
            .await?
        {
            return Err(JobError::invalid_raw(
                "InvalidParameterValue.Name",
                format!("a procedure named {name:?} exists"),
            ));
        }
        Ok(json!({}))
    }

    /// `DescribeProcedureTemplates`: by `Names`, paged.
    pub async fn describe_procedures(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let names: Option<Vec<String>> = p.array("Names")?.map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        let offset = p.uint("Offset")?.unwrap_or(0) as usize;
        let limit = p.uint("Limit")?.unwrap_or(10).clamp(1, 100) as usize;
        let all: Vec<Value> = self
            .store
            .procedures()
            .await?
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter(|v| {
                names
                    .as_ref()
                    .is_none_or(|n| n.iter().any(|x| v["Name"] == x.as_str()))
            })
            .collect();
        let set: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|v| {
                json!({
                    "Name": v["Name"], "Type": "Custom", "Comment": v["Comment"],
                    "MediaProcessTask": v["MediaProcessTask"],
                    "CreateTime": iso_time(v["CreateMs"].as_i64().unwrap_or(0)),
                    "UpdateTime": iso_time(v["UpdateMs"].as_i64().unwrap_or(0)),
                })
            })
            .collect();
        Ok(json!({ "TotalCount": all.len(), "ProcedureTemplateSet": set }))
    }

    /// `DeleteProcedureTemplate`.
    pub async fn delete_procedure(&self, params: &Value) -> Result<Value, JobError> {
        let name =
            Params::new(params)
                .string("Name")?
                .ok_or_else(|| JobError::MissingParameter {
                    field: "Name".into(),
                })?;
        if !self.store.delete_procedure(&name).await? {
            return Err(procedure_missing(&name));
        }
        Ok(json!({}))
    }

    /// The `MediaProcessTask` of a procedure.
    pub(super) async fn procedure_task(&self, name: &str) -> Result<Value, JobError> {
        let body = self
            .store
            .procedure(name)
            .await?
            .ok_or_else(|| procedure_missing(name))?;
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        Ok(v["MediaProcessTask"].clone())
    }

    /// Whether a procedure exists.
    pub async fn procedure_exists(&self, name: &str) -> Result<bool, JobError> {
        Ok(self.store.procedure(name).await?.is_some())
    }

    /// `ProcessMediaByProcedure`: the procedure's task on a media file.
    pub async fn process_media_by_procedure(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let name = p
            .string("ProcedureName")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "ProcedureName".into(),
            })?;
        let task = self.procedure_task(&name).await?;
        let media = self.media_of(&p).await?;
        self.submit(media, &task, &p).await
    }

    /// The procedures an upload of `bucket/key` starts: every trigger rule
    /// that matches, and the one the uploader named; once each.
    fn triggered<'a>(&'a self, bucket: &str, key: &str, named: Option<&'a str>) -> Vec<&'a str> {
        let mut procedures: Vec<&str> = self
            .triggers
            .iter()
            .filter(|t| t.bucket.as_deref().unwrap_or(&self.bucket) == bucket)
            .filter(|t| key.starts_with(&t.prefix) && key.ends_with(&t.suffix))
            .map(|t| t.procedure.as_str())
            .collect();
        procedures.extend(named);
        procedures.sort_unstable();
        procedures.dedup();
        procedures
    }

    /// Before an upload of `bucket/key` is committed: when it will start
    /// procedures, records that in the store, so that a gateway stopped
    /// after the commit and before [`Jobs::on_upload`] starts them when it
    /// restarts (see [`Jobs::resume_uploads`]). The upload should fail when
    /// this does: its procedures could be lost.
    pub async fn upload_begins(
        &self,
        bucket: &str,
        key: &str,
        named: Option<&str>,
    ) -> Result<Option<UploadIntent>, JobError> {
        if self.triggered(bucket, key, named).is_empty()
            && self.workflows_for_upload(bucket, key).await?.is_empty()
        {
            return Ok(None);
        }
        let seq = self
            .store
            .insert_upload(&self.node, bucket, key, named, now_ms())
            .await?;
        Ok(Some(UploadIntent(seq)))
    }

    /// The upload of an [`UploadIntent`] failed: nothing is to start.
    pub async fn upload_abandoned(&self, intent: Option<UploadIntent>) {
        if let Some(UploadIntent(seq)) = intent {
            if let Err(err) = self.store.delete_upload(seq).await {
                tracing::warn!(error = %err, "could not remove the record of a failed upload");
            }
        }
    }

    /// At start-up: starts the procedures of the uploads this node committed
    /// but stopped before starting them (`exists` says whether the object is
    /// there: an upload that never committed starts nothing). A procedure
    /// may run twice when the stop came after it started and before its
    /// record was removed; none is lost. Returns the TaskIds.
    pub async fn resume_uploads<F, Fut>(&self, exists: F) -> Result<Vec<String>, JobError>
    where
        F: Fn(String, String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut started = Vec::new();
        for upload in self.store.uploads_of(&self.node).await? {
            if exists(upload.bucket.clone(), upload.key.clone()).await {
                tracing::info!(bucket = %upload.bucket, key = %upload.key, "starting the procedures of an upload interrupted by the last stop");
                let intent = Some(UploadIntent(upload.seq));
                started.extend(
                    self.on_upload(
                        &upload.bucket,
                        &upload.key,
                        upload.procedure.as_deref(),
                        intent,
                    )
                    .await,
                );
            } else {
                self.store.delete_upload(upload.seq).await?;
            }
        }
        Ok(started)
    }

    /// After an upload of `bucket/key` completed: starts every procedure a
    /// trigger rule or the uploader (`named`) asks for, once each, and the
    /// runs of the workflows it matches, then removes the upload's record.
    /// Returns the TaskIds and run ids. Failures are
    /// logged; the upload itself stands.
    pub async fn on_upload(
        &self,
        bucket: &str,
        key: &str,
        named: Option<&str>,
        intent: Option<UploadIntent>,
    ) -> Vec<String> {
        let procedures = self.triggered(bucket, key, named);
        let mut started = Vec::new();
        for name in procedures {
            let result = async {
                let task = self.procedure_task(name).await?;
                let id = file_id(bucket, key);
                self.store.ensure_media(&id, bucket, key, now_ms()).await?;
                let options = json!({});
                self.submit(
                    (bucket.to_owned(), key.to_owned(), id),
                    &task,
                    &Params::new(&options),
                )
                .await
            }
            .await;
            match result {
                Ok(answer) => {
                    let task_id = answer["TaskId"].as_str().unwrap_or_default().to_owned();
                    tracing::info!(procedure = name, %bucket, %key, task = %task_id, "upload started a procedure");
                    started.push(task_id);
                }
                Err(err) => {
                    tracing::warn!(procedure = name, %bucket, %key, error = %err, "upload trigger failed")
                }
            }
        }
        started.extend(self.start_upload_runs(bucket, key, intent).await);
        if let Some(UploadIntent(seq)) = intent {
            if let Err(err) = self.store.delete_upload(seq).await {
                // Left behind, the record starts the procedures again at the
                // next start: twice rather than never.
                tracing::warn!(%bucket, %key, error = %err, "could not remove an upload record");
            }
        }
        started
    }
}

impl Jobs {
    /// Starts the runs of the workflows an upload matches; the run ids are
    /// fixed by the upload's record, so doing this again after a crash
    /// starts nothing twice. Returns the run ids.
    async fn start_upload_runs(
        &self,
        bucket: &str,
        key: &str,
        intent: Option<UploadIntent>,
    ) -> Vec<String> {
        // Without a record, `upload_begins` found nothing to start.
        let Some(UploadIntent(seq)) = intent else {
            return Vec::new();
        };
        let workflows = match self.workflows_for_upload(bucket, key).await {
            Ok(workflows) => workflows,
            Err(err) => {
                tracing::warn!(%bucket, %key, error = %err, "reading the workflows failed");
                return Vec::new();
            }
        };
        let mut started = Vec::new();
        for workflow in workflows {
            let run_id = super::workflow::upload_run_id(&workflow.id, seq);
            match self.start_run(&workflow, key, &run_id).await {
                Ok(run) => started.push(run),
                Err(err) => {
                    tracing::warn!(workflow = %workflow.id, %bucket, %key, error = %err, "upload did not start its workflow")
                }
            }
        }
        started
    }
}

/// The store's record of an upload that starts procedures, from
/// [`Jobs::upload_begins`] to [`Jobs::on_upload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadIntent(i64);

fn procedure_missing(name: &str) -> JobError {
    JobError::NotFound {
        what: super::Missing::Procedure,
        message: format!("there is no procedure named {name:?}"),
    }
}
