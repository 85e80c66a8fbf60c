//! Workflows (CI's `MediaWorkflow`): an upload under a prefix, with a
//! matching file type, starts snapshot jobs made from templates, with
//! output names that may name the input (`${InputName}`, ...). Runs are
//! started by uploads (recorded before the commit, so a committed upload
//! starts its runs even across a crash: [`super::Jobs::upload_begins`]) and
//! by an explicit trigger. A run's id is fixed by the upload's record, and
//! each of its jobs by the run and the node, so a run started again after a
//! crash finds its jobs and starts nothing twice.

use serde::{Deserialize, Serialize};

use super::media_queue::{fresh_id, JobView, NewJob, QueueNotify};
use super::params::now_ms;
use super::snapshot_job::{Callback, OutputTarget, SnapshotJob};
use super::store::{decode_body, RunRow, WorkflowRow};
use super::{JobError, Jobs, Missing};

/// Longest workflow name, characters.
pub const MAX_NAME: usize = 128;
/// Most snapshot nodes in one workflow.
pub const MAX_NODES: usize = 16;

/// The file types a workflow's start node accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtFilter {
    /// Off: every file.
    pub enabled: bool,
    /// Every file (with `enabled`).
    pub all_files: bool,
    /// Common video suffixes.
    pub video: bool,
    /// These suffixes (lower case, no dot).
    pub custom: Vec<String>,
}

/// Suffixes `ExtFilter.Video` stands for.
const VIDEO_SUFFIXES: [&str; 14] = [
    "mp4", "mov", "m4v", "mkv", "webm", "flv", "avi", "ts", "mts", "mpg", "mpeg", "wmv", "3gp",
    "ogv",
];

impl ExtFilter {
    /// Whether `key` passes the filter.
    pub fn accepts(&self, key: &str) -> bool {
        if !self.enabled || self.all_files {
            return true;
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let Some((_, suffix)) = name.rsplit_once('.') else {
            return false;
        };
        let suffix = suffix.to_ascii_lowercase();
        (self.video && VIDEO_SUFFIXES.contains(&suffix.as_str())) || self.custom.contains(&suffix)
    }
}

/// A snapshot node: a template and where its outputs go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStep {
    /// The node's name in the topology.
    pub node: String,
    /// The template.
    pub template_id: String,
    /// Output names, with `${InputName}`, `${InputNameAndExt}`,
    /// `${InputPath}`, `${RunId}` and `${Number}`.
    pub output: OutputTarget,
}

/// A workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// `w…`.
    pub id: String,
    /// Its bucket.
    pub bucket: String,
    /// Its name.
    pub name: String,
    /// Whether uploads start it.
    pub active: bool,
    /// Keys it starts for begin with this.
    pub prefix: String,
    /// Which file types.
    pub filter: ExtFilter,
    /// Where its jobs' ends are reported.
    pub notify: Option<QueueNotify>,
    /// Its snapshot nodes.
    pub steps: Vec<SnapshotStep>,
    /// The topology's dependencies as given (node → following nodes).
    pub dependencies: Vec<(String, String)>,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms.
    pub updated_ms: i64,
}

impl Workflow {
    /// Whether an upload of `key` starts it.
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && self.filter.accepts(key)
    }
}

/// A run of a workflow on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// `i…`.
    pub run_id: String,
    /// The workflow.
    pub workflow_id: String,
    /// Its name when the run started.
    pub workflow_name: String,
    /// The bucket.
    pub bucket: String,
    /// The object.
    pub key: String,
    /// Its jobs: node name and job id.
    pub jobs: Vec<(String, String)>,
    /// Unix ms.
    pub created_ms: i64,
}

/// A run with its jobs as they stand.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The run.
    pub run: WorkflowRun,
    /// Each job (node name and its view, if it is still there).
    pub jobs: Vec<(String, Option<JobView>)>,
}

/// A page of runs.
#[derive(Debug, Clone)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunView>,
    /// The token of the next page (empty on the last).
    pub next_token: String,
}

/// `pattern` with the input's placeholders filled in.
fn fill_input(pattern: &str, key: &str, run_id: &str) -> String {
    let (path, name_and_ext) = match key.rsplit_once('/') {
        Some((path, name)) => (path, name),
        None => ("", key),
    };
    let name = name_and_ext
        .rsplit_once('.')
        .map_or(name_and_ext, |(name, _)| name);
    pattern
        .replace("${InputNameAndExt}", name_and_ext)
        .replace("${InputName}", name)
        .replace("${InputPath}", path)
        .replace("${RunId}", run_id)
}

impl Jobs {
    /// Checks a workflow's fields and that its templates exist.
    async fn check_workflow(&self, workflow: &Workflow) -> Result<(), JobError> {
        let chars = workflow.name.chars().count();
        if chars == 0 || chars > MAX_NAME {
            return Err(JobError::invalid(
                "MediaWorkflow.Name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        if workflow.steps.is_empty() || workflow.steps.len() > MAX_NODES {
            return Err(JobError::invalid(
                "MediaWorkflow.Topology.Nodes",
                format!("needs 1 to {MAX_NODES} Snapshot nodes"),
            ));
        }
        for step in &workflow.steps {
            let template = self
                .media_template(&workflow.bucket, &step.template_id)
                .await?;
            let sample = fill_input_target(&step.output, "dir/name.mp4", "i0");
            let job = SnapshotJob {
                bucket: workflow.bucket.clone(),
                key: "dir/name.mp4".into(),
                settings: template.settings,
                output: sample,
                template: None,
                user_data: String::new(),
                level: 0,
                queue_id: Jobs::queue_id_of(&workflow.bucket),
                callback: None,
            };
            job.validate_output().map_err(|e| match e {
                JobError::InvalidParameterValue { field, message } => JobError::invalid(
                    &field.replace(
                        "Operation.",
                        &format!("Topology.Nodes.{}.Operation.", step.node),
                    ),
                    message,
                ),
                other => other,
            })?;
        }
        Ok(())
    }

    async fn save_workflow(&self, workflow: &Workflow) -> Result<(), JobError> {
        let row = WorkflowRow {
            workflow_id: workflow.id.clone(),
            bucket: workflow.bucket.clone(),
            body: serde_json::to_string(workflow).expect("workflow JSON"),
            active: workflow.active,
        };
        self.store.put_workflow(&row, workflow.updated_ms).await?;
        Ok(())
    }

    /// Creates a workflow from `draft` (its id and times are set here).
    pub async fn create_workflow(&self, mut draft: Workflow) -> Result<Workflow, JobError> {
        draft.id = fresh_id('w');
        draft.created_ms = now_ms();
        draft.updated_ms = draft.created_ms;
        self.check_workflow(&draft).await?;
        self.save_workflow(&draft).await?;
        tracing::info!(workflow = %draft.id, bucket = %draft.bucket, "workflow created");
        Ok(draft)
    }

    /// Replaces a workflow's definition.
    pub async fn update_workflow(
        &self,
        id: &str,
        mut draft: Workflow,
    ) -> Result<Workflow, JobError> {
        let old = self.workflow(&draft.bucket, id).await?;
        draft.id = old.id;
        draft.created_ms = old.created_ms;
        draft.updated_ms = now_ms();
        self.check_workflow(&draft).await?;
        self.save_workflow(&draft).await?;
        Ok(draft)
    }

    /// Activates or pauses a workflow.
    pub async fn set_workflow_active(
        &self,
        bucket: &str,
        id: &str,
        active: bool,
    ) -> Result<Workflow, JobError> {
        let mut workflow = self.workflow(bucket, id).await?;
        workflow.active = active;
        workflow.updated_ms = now_ms();
        self.save_workflow(&workflow).await?;
        Ok(workflow)
    }

    /// Deletes a workflow (its runs and jobs stay).
    pub async fn delete_workflow(&self, bucket: &str, id: &str) -> Result<(), JobError> {
        if !self.store.delete_workflow(bucket, id).await? {
            return Err(workflow_missing(id));
        }
        Ok(())
    }

    /// The workflows of `bucket`.
    pub async fn workflows(&self, bucket: &str) -> Result<Vec<Workflow>, JobError> {
        self.store
            .workflows(bucket, false)
            .await?
            .iter()
            .map(|row| Ok(decode_body(&row.body)?))
            .collect()
    }

    /// One workflow of `bucket`.
    pub async fn workflow(&self, bucket: &str, id: &str) -> Result<Workflow, JobError> {
        self.workflows(bucket)
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| workflow_missing(id))
    }

    /// The active workflows an upload of `key` to `bucket` starts.
    pub async fn workflows_for_upload(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<Workflow>, JobError> {
        let mut found = Vec::new();
        for row in self.store.workflows(bucket, true).await? {
            let workflow: Workflow = decode_body(&row.body)?;
            if workflow.matches(key) {
                found.push(workflow);
            }
        }
        Ok(found)
    }

    /// Starts `workflow` on `key` as run `run_id`: one snapshot job per
    /// node. A run that exists already is not started again (its jobs are
    /// found by their ids). Returns the run id.
    pub async fn start_run(
        &self,
        workflow: &Workflow,
        key: &str,
        run_id: &str,
    ) -> Result<String, JobError> {
        let mut run = WorkflowRun {
            run_id: run_id.to_owned(),
            workflow_id: workflow.id.clone(),
            workflow_name: workflow.name.clone(),
            bucket: workflow.bucket.clone(),
            key: key.to_owned(),
            jobs: Vec::new(),
            created_ms: now_ms(),
        };
        if self.store.run(run_id).await?.is_some() {
            return Ok(run_id.to_owned());
        }
        for step in &workflow.steps {
            let job = SnapshotJob {
                bucket: workflow.bucket.clone(),
                key: key.to_owned(),
                settings: super::media_queue::placeholder_settings(),
                output: fill_input_target(&step.output, key, run_id),
                template: None,
                user_data: String::new(),
                level: 0,
                queue_id: Jobs::queue_id_of(&workflow.bucket),
                callback: workflow
                    .notify
                    .as_ref()
                    .filter(|n| n.enabled && !n.url.is_empty())
                    .map(|n| Callback {
                        url: n.url.clone(),
                        format: n.format,
                    }),
            };
            let view = self
                .submit_snapshot_job(NewJob {
                    job,
                    template_id: Some(step.template_id.clone()),
                    // Its own namespace beside VOD's SessionIds.
                    dedupe: Some(format!("workflow-run:{run_id}/{}", step.node)),
                })
                .await?;
            run.jobs.push((step.node.clone(), view.id));
        }
        let row = RunRow {
            seq: 0,
            run_id: run.run_id.clone(),
            workflow_id: run.workflow_id.clone(),
            bucket: run.bucket.clone(),
            body: serde_json::to_string(&run).expect("run JSON"),
            created_ms: run.created_ms,
        };
        self.store.insert_run(&row).await?;
        tracing::info!(workflow = %workflow.id, run = run_id, %key, jobs = run.jobs.len(), "workflow run started");
        Ok(run_id.to_owned())
    }

    /// Starts a workflow on an existing object (the caller checked it
    /// exists). Returns the run id.
    pub async fn trigger_workflow(
        &self,
        bucket: &str,
        id: &str,
        key: &str,
    ) -> Result<String, JobError> {
        let workflow = self.workflow(bucket, id).await?;
        self.start_run(&workflow, key, &fresh_id('i')).await
    }

    /// A run of `bucket` with its jobs.
    pub async fn workflow_run(&self, bucket: &str, run_id: &str) -> Result<RunView, JobError> {
        let row = self
            .store
            .run(run_id)
            .await?
            .filter(|r| r.bucket == bucket)
            .ok_or_else(|| {
                JobError::missing(Missing::Job, format!("there is no workflow run {run_id:?}"))
            })?;
        self.run_view(&row).await
    }

    async fn run_view(&self, row: &RunRow) -> Result<RunView, JobError> {
        let run: WorkflowRun = decode_body(&row.body)?;
        let ids: Vec<String> = run.jobs.iter().map(|(_, id)| id.clone()).collect();
        let (found, _) = self.snapshot_jobs(&run.bucket, &ids).await?;
        let jobs = run
            .jobs
            .iter()
            .map(|(node, id)| (node.clone(), found.iter().find(|v| &v.id == id).cloned()))
            .collect();
        Ok(RunView { run, jobs })
    }

    /// Runs of a workflow, a page at a time.
    pub async fn workflow_runs(
        &self,
        bucket: &str,
        workflow_id: &str,
        ascending: bool,
        size: usize,
        next_token: &str,
    ) -> Result<RunPage, JobError> {
        let after = match next_token {
            "" => None,
            token => Some(token.parse::<i64>().map_err(|_| {
                JobError::invalid("nextToken", "is not a token this gateway gave out")
            })?),
        };
        let rows = self
            .store
            .runs(workflow_id, ascending, after, size as i64 + 1)
            .await?;
        let mut runs = Vec::new();
        for row in rows.iter().take(size).filter(|r| r.bucket == bucket) {
            runs.push(self.run_view(row).await?);
        }
        let next_token = match (rows.len() > size, rows.get(size.saturating_sub(1))) {
            (true, Some(last)) => last.seq.to_string(),
            _ => String::new(),
        };
        Ok(RunPage { runs, next_token })
    }
}

/// `target` with the input's placeholders filled in.
fn fill_input_target(target: &OutputTarget, key: &str, run_id: &str) -> OutputTarget {
    OutputTarget {
        bucket: target.bucket.clone(),
        region: target.region.clone(),
        pictures: target
            .pictures
            .as_deref()
            .map(|p| fill_input(p, key, run_id)),
        sprites: target
            .sprites
            .as_deref()
            .map(|p| fill_input(p, key, run_id)),
    }
}

fn workflow_missing(id: &str) -> JobError {
    JobError::missing(Missing::Workflow, format!("there is no workflow {id:?}"))
}

/// The id of the run an upload record starts: fixed by the record, so a
/// run started again after a crash is the same run.
pub fn upload_run_id(workflow_id: &str, upload_seq: i64) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(format!("run/{workflow_id}/{upload_seq}").as_bytes());
    format!("i{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_placeholders() {
        assert_eq!(
            fill_input(
                "out/${InputPath}/${InputName}-${Number}.jpg",
                "a/b/c.mp4",
                "i1"
            ),
            "out/a/b/c-${Number}.jpg"
        );
        assert_eq!(
            fill_input("${InputNameAndExt}.jpg", "c.mp4", "i1"),
            "c.mp4.jpg"
        );
    }

    #[test]
    fn filters() {
        let video = ExtFilter {
            enabled: true,
            video: true,
            ..ExtFilter::default()
        };
        assert!(video.accepts("a/b.MP4"));
        assert!(!video.accepts("a/b.png"));
        assert!(!video.accepts("a/noext"));
        let custom = ExtFilter {
            enabled: true,
            custom: vec!["png".into()],
            ..ExtFilter::default()
        };
        assert!(custom.accepts("x.png"));
        assert!(ExtFilter::default().accepts("anything"));
    }
}
