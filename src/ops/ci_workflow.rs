//! The workflow calls of the CI media API (`/workflow`,
//! `/triggerworkflow`, `/workflowexecution`): XML to `jobs::workflow`'s
//! types and back. Shares the CI adapter's document helpers.

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;

use super::ci::{
    check_input, check_output, document, missing, oldest_first, one_of, page_param, queue_notify,
    required, xml_ok, NotifyXml, OutputXml, FORMATS,
};
use super::document::iso_time;
use super::document::{write_xml, Node};
use super::Ctx;
use crate::error::{ApiError, ErrorCode};
use crate::jobs::media_queue::{JobState, MAX_PAGE};
use crate::jobs::snapshot_job::OutputTarget;
use crate::jobs::workflow::{ExtFilter, RunView, SnapshotStep, Workflow};
use crate::jobs::JobError;
use crate::proto::ci_route::{CiCall, CiFlag};
use crate::proto::xml::XmlWriter;
use crate::server::body::Response;
use crate::storage::BodyStream;

/// `<Request>` of `POST /workflow` and `PUT /workflow/<id>`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkflowRequest {
    media_workflow: Option<MediaWorkflowXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MediaWorkflowXml {
    name: Option<String>,
    state: Option<String>,
    topology: Option<TopologyXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TopologyXml {
    dependencies: Option<BTreeMap<String, String>>,
    nodes: Option<BTreeMap<String, NodeXml>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeXml {
    #[serde(rename = "Type")]
    kind: Option<String>,
    input: Option<StartInputXml>,
    operation: Option<StepOperationXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartInputXml {
    object_prefix: Option<String>,
    queue_id: Option<String>,
    notify_config: Option<NotifyXml>,
    ext_filter: Option<ExtFilterXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExtFilterXml {
    state: Option<String>,
    video: Option<String>,
    custom: Option<String>,
    custom_exts: Option<String>,
    all_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StepOperationXml {
    template_id: Option<String>,
    output: Option<OutputXml>,
}

/// Serves a `/workflow` call.
pub async fn workflow(
    ctx: &Ctx<'_>,
    call: &CiCall,
    method: &Method,
    request: BodyStream,
) -> Result<Response, ApiError> {
    let jobs = &ctx.state.jobs;
    let bucket = &ctx.bucket.name;
    let workflow = match (method, call.id.as_deref(), call.flag) {
        (&Method::POST, None, _) => {
            let draft = checked_draft(ctx, request).await?;
            jobs.create_workflow(draft).await?
        }
        (&Method::PUT, Some(id), Some(flag @ (CiFlag::Active | CiFlag::Paused))) => {
            jobs.set_workflow_active(bucket, id, flag == CiFlag::Active)
                .await?
        }
        (&Method::PUT, Some(id), None) => {
            let draft = checked_draft(ctx, request).await?;
            jobs.update_workflow(id, draft).await?
        }
        (&Method::GET, None, _) => return list(ctx).await,
        (&Method::DELETE, Some(id), _) => {
            jobs.delete_workflow(bucket, id).await?;
            let mut doc = XmlWriter::new("Response");
            doc.text("WorkflowId", id);
            return Ok(xml_ok(doc.finish()));
        }
        _ => return Err(not_allowed(method)),
    };
    let mut doc = XmlWriter::new("Response");
    write_xml(&mut doc, &[workflow_node(&workflow)]);
    Ok(xml_ok(doc.finish()))
}

fn not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on this CI resource."),
    )
}

/// The workflow a request defines, its outputs checked as a job's are:
/// the buckets exist and the caller may write there (runs write with the
/// authority of whoever defined the workflow).
async fn checked_draft(ctx: &Ctx<'_>, request: BodyStream) -> Result<Workflow, ApiError> {
    let draft = draft(ctx, document(ctx, request).await?)?;
    for step in &draft.steps {
        let field = format!(
            "MediaWorkflow.Topology.Nodes.{}.Operation.Output",
            step.node
        );
        check_output(ctx, &step.output, &field)?;
    }
    Ok(draft)
}

/// The typed workflow of a request (id and times are set by the core).
fn draft(ctx: &Ctx<'_>, request: WorkflowRequest) -> Result<Workflow, JobError> {
    let wf = request
        .media_workflow
        .ok_or_else(|| missing("MediaWorkflow"))?;
    let active = one_of(
        "MediaWorkflow.State",
        &wf.state,
        &[("Active", true), ("Paused", false)],
        false,
    )?;
    let topology = wf
        .topology
        .ok_or_else(|| missing("MediaWorkflow.Topology"))?;
    let nodes = topology
        .nodes
        .ok_or_else(|| missing("MediaWorkflow.Topology.Nodes"))?;
    let mut start = None;
    let mut steps = Vec::new();
    for (name, node) in nodes {
        let field = format!("MediaWorkflow.Topology.Nodes.{name}");
        match required(&format!("{field}.Type"), &node.kind)? {
            "Start" => start = Some(start_node(ctx, &node, &field)?),
            "Snapshot" => steps.push(step(&name, &node, &field)?),
            other => {
                return Err(JobError::invalid(
                    &format!("{field}.Type"),
                    format!("{other:?} nodes are not supported; use Start and Snapshot"),
                ))
            }
        }
    }
    let (prefix, filter, notify) =
        start.ok_or_else(|| missing("MediaWorkflow.Topology.Nodes.Start"))?;
    Ok(Workflow {
        id: String::new(),
        bucket: ctx.bucket.name.clone(),
        name: required("MediaWorkflow.Name", &wf.name)?.to_owned(),
        active,
        prefix,
        filter,
        notify,
        steps,
        dependencies: topology
            .dependencies
            .unwrap_or_default()
            .into_iter()
            .collect(),
        created_ms: 0,
        updated_ms: 0,
    })
}

type StartParts = (
    String,
    ExtFilter,
    Option<crate::jobs::media_queue::QueueNotify>,
);

fn start_node(ctx: &Ctx<'_>, node: &NodeXml, field: &str) -> Result<StartParts, JobError> {
    let input = node
        .input
        .as_ref()
        .ok_or_else(|| missing(&format!("{field}.Input")))?;
    if let Some(queue) = input.queue_id.as_deref().filter(|q| !q.is_empty()) {
        if queue != crate::jobs::Jobs::queue_id_of(&ctx.bucket.name) {
            return Err(JobError::missing(
                crate::jobs::Missing::Queue,
                format!("{field}.Input.QueueId: the bucket has no queue {queue:?}"),
            ));
        }
    }
    let prefix = input
        .object_prefix
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    let filter = match &input.ext_filter {
        None => ExtFilter::default(),
        Some(f) => {
            let on = |name: &str, value: &Option<String>| {
                one_of(
                    &format!("{field}.Input.ExtFilter.{name}"),
                    value,
                    &[("true", true), ("false", false)],
                    false,
                )
            };
            ExtFilter {
                enabled: one_of(
                    &format!("{field}.Input.ExtFilter.State"),
                    &f.state,
                    &[("On", true), ("Off", false)],
                    false,
                )?,
                all_files: on("AllFile", &f.all_file)?,
                video: on("Video", &f.video)?,
                custom: if on("Custom", &f.custom)? {
                    f.custom_exts
                        .clone()
                        .unwrap_or_default()
                        .split('/')
                        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                } else {
                    Vec::new()
                },
            }
        }
    };
    let notify = match &input.notify_config {
        Some(n) if n.url.as_deref().is_some_and(|u| !u.trim().is_empty()) => Some(queue_notify(n)?),
        _ => None,
    };
    Ok((prefix, filter, notify))
}

fn step(name: &str, node: &NodeXml, field: &str) -> Result<SnapshotStep, JobError> {
    let op = node
        .operation
        .as_ref()
        .ok_or_else(|| missing(&format!("{field}.Operation")))?;
    let template_id = required(&format!("{field}.Operation.TemplateId"), &op.template_id)?;
    let out = op
        .output
        .as_ref()
        .ok_or_else(|| missing(&format!("{field}.Operation.Output")))?;
    let of = |n: &str| format!("{field}.Operation.Output.{n}");
    let clean = |v: &Option<String>| v.clone().map(|o| o.trim_start_matches('/').to_owned());
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(JobError::invalid(
            field,
            "node names are letters, digits, _ and -",
        ));
    }
    Ok(SnapshotStep {
        node: name.to_owned(),
        template_id: template_id.to_owned(),
        output: OutputTarget {
            bucket: required(&of("Bucket"), &out.bucket)?.to_owned(),
            region: required(&of("Region"), &out.region)?.to_owned(),
            pictures: clean(&out.object),
            sprites: clean(&out.sprite_object),
        },
    })
}

async fn list(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let q = &ctx.route.query;
    let ids: Vec<&str> = q
        .get("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect();
    let name = q.get("name").unwrap_or_default();
    let page_number = page_param(q.get("pageNumber"), "pageNumber", usize::MAX, 1)?;
    let page_size = page_param(q.get("pageSize"), "pageSize", MAX_PAGE, 10)?;
    let all = ctx.state.jobs.workflows(&ctx.bucket.name).await?;
    let matching: Vec<&Workflow> = all
        .iter()
        .filter(|w| ids.is_empty() || ids.contains(&w.id.as_str()))
        .filter(|w| w.name.contains(name))
        .collect();
    let mut doc = XmlWriter::new("Response");
    let shown = matching
        .iter()
        .skip((page_number - 1).saturating_mul(page_size))
        .take(page_size);
    for workflow in shown {
        write_xml(
            &mut doc,
            &[workflow_node(workflow).renamed("MediaWorkflowList")],
        );
    }
    for id in ids.iter().filter(|i| !all.iter().any(|w| w.id == **i)) {
        doc.text("NonExistIDs", id);
    }
    doc.text("TotalCount", matching.len().to_string())
        .text("PageNumber", page_number.to_string())
        .text("PageSize", page_size.to_string());
    Ok(xml_ok(doc.finish()))
}

fn workflow_node(w: &Workflow) -> Node {
    let mut start_input = vec![
        Node::leaf("ObjectPrefix", &w.prefix),
        Node::leaf("QueueId", crate::jobs::Jobs::queue_id_of(&w.bucket)),
        Node::branch(
            "ExtFilter",
            vec![
                Node::leaf("State", if w.filter.enabled { "On" } else { "Off" }),
                Node::leaf("AllFile", w.filter.all_files),
                Node::leaf("Video", w.filter.video),
                Node::leaf("Custom", !w.filter.custom.is_empty()),
                Node::leaf("CustomExts", w.filter.custom.join("/")),
            ],
        ),
    ];
    if let Some(n) = &w.notify {
        start_input.push(Node::branch(
            "NotifyConfig",
            vec![
                Node::leaf("Url", &n.url),
                Node::leaf("Type", "Url"),
                Node::leaf("Event", &n.events),
                Node::leaf("ResultFormat", super::ci::name_of(&FORMATS, n.format)),
                Node::leaf("State", if n.enabled { "On" } else { "Off" }),
            ],
        ));
    }
    let mut nodes = vec![Node::branch(
        "Start",
        vec![
            Node::leaf("Type", "Start"),
            Node::branch("Input", start_input),
        ],
    )];
    for step in &w.steps {
        let mut output = vec![
            Node::leaf("Region", &step.output.region),
            Node::leaf("Bucket", &step.output.bucket),
        ];
        if let Some(p) = &step.output.pictures {
            output.push(Node::leaf("Object", p));
        }
        if let Some(p) = &step.output.sprites {
            output.push(Node::leaf("SpriteObject", p));
        }
        nodes.push(Node::branch(
            step.node.clone(),
            vec![
                Node::leaf("Type", "Snapshot"),
                Node::branch(
                    "Operation",
                    vec![
                        Node::leaf("TemplateId", &step.template_id),
                        Node::branch("Output", output),
                    ],
                ),
            ],
        ));
    }
    let dependencies = w
        .dependencies
        .iter()
        .map(|(from, to)| Node::leaf(from.clone(), to))
        .collect();
    Node::branch(
        "MediaWorkflow",
        vec![
            Node::leaf("Name", &w.name),
            Node::leaf("WorkflowId", &w.id),
            Node::leaf("State", if w.active { "Active" } else { "Paused" }),
            Node::leaf("CreateTime", iso_time(w.created_ms)),
            Node::leaf("UpdateTime", iso_time(w.updated_ms)),
            Node::leaf("BucketId", &w.bucket),
            Node::branch(
                "Topology",
                vec![
                    Node::branch("Dependencies", dependencies),
                    Node::branch("Nodes", nodes),
                ],
            ),
        ],
    )
}

/// `POST /triggerworkflow?workflowId=&object=`.
pub async fn trigger(ctx: &Ctx<'_>, method: &Method) -> Result<Response, ApiError> {
    if method != Method::POST {
        return Err(not_allowed(method));
    }
    let q = &ctx.route.query;
    let id = required("workflowId", &q.get("workflowId").map(str::to_owned))?.to_owned();
    let key = required("object", &q.get("object").map(str::to_owned))?
        .trim_start_matches('/')
        .to_owned();
    check_input(ctx, &key, "object").await?;
    let run_id = ctx
        .state
        .jobs
        .trigger_workflow(&ctx.bucket.name, &id, &key)
        .await?;
    let mut doc = XmlWriter::new("Response");
    doc.text("InstanceId", &run_id);
    Ok(xml_ok(doc.finish()))
}

/// `GET /workflowexecution/<runId>` and `GET /workflowexecution?workflowId=`.
pub async fn execution(
    ctx: &Ctx<'_>,
    call: &CiCall,
    method: &Method,
) -> Result<Response, ApiError> {
    if method != Method::GET {
        return Err(not_allowed(method));
    }
    let jobs = &ctx.state.jobs;
    if let Some(run_id) = call.id.as_deref() {
        let view = jobs.workflow_run(&ctx.bucket.name, run_id).await?;
        let mut doc = XmlWriter::new("Response");
        write_xml(&mut doc, &[run_node(&view, "WorkflowExecution")]);
        return Ok(xml_ok(doc.finish()));
    }
    let q = &ctx.route.query;
    let workflow_id = required("workflowId", &q.get("workflowId").map(str::to_owned))?.to_owned();
    jobs.workflow(&ctx.bucket.name, &workflow_id).await?;
    let ascending = oldest_first(q)?;
    let size = page_param(q.get("size"), "size", MAX_PAGE, 10)?;
    let token = q.get("nextToken").unwrap_or_default();
    let page = jobs
        .workflow_runs(&ctx.bucket.name, &workflow_id, ascending, size, token)
        .await?;
    let mut doc = XmlWriter::new("Response");
    for run in &page.runs {
        write_xml(&mut doc, &[run_node(run, "WorkflowExecutionList")]);
    }
    doc.text("NextToken", &page.next_token);
    Ok(xml_ok(doc.finish()))
}

/// A run's state from its jobs'.
fn run_state(view: &RunView) -> &'static str {
    let states: Vec<Option<JobState>> = view
        .jobs
        .iter()
        .map(|(_, job)| job.as_ref().map(|j| j.state))
        .collect();
    if states
        .iter()
        .any(|s| matches!(s, None | Some(JobState::Failed)))
    {
        "Failed"
    } else if states.contains(&Some(JobState::Cancel)) {
        "Cancel"
    } else if states.iter().all(|s| *s == Some(JobState::Success)) {
        "Success"
    } else {
        "Running"
    }
}

fn run_node(view: &RunView, name: &'static str) -> Node {
    let run = &view.run;
    let mut children = vec![
        Node::leaf("RunId", &run.run_id),
        Node::leaf("WorkflowId", &run.workflow_id),
        Node::leaf("WorkflowName", &run.workflow_name),
        Node::leaf("State", run_state(view)),
        Node::leaf("CreateTime", iso_time(run.created_ms)),
        Node::leaf("Object", &run.key),
    ];
    for (node, job) in &view.jobs {
        let mut task = vec![Node::leaf("Type", "Snapshot"), Node::leaf("NodeName", node)];
        if let Some(job) = job {
            task.extend([
                Node::leaf("JobId", &job.id),
                Node::leaf("State", super::ci::state_name(job.state)),
                Node::leaf(
                    "StartTime",
                    job.started_ms.map(iso_time).unwrap_or_default(),
                ),
                Node::leaf("EndTime", job.ended_ms.map(iso_time).unwrap_or_default()),
                Node::leaf(
                    "Code",
                    match (&job.progress.failure, job.state) {
                        (Some(f), _) => super::ci::failure_code(f.kind),
                        (None, JobState::Success) => "Success",
                        (None, JobState::Cancel) => "Cancelled",
                        (None, _) => "",
                    },
                ),
                Node::leaf(
                    "Message",
                    job.progress
                        .failure
                        .as_ref()
                        .map(|f| f.message.clone())
                        .unwrap_or_default(),
                ),
            ]);
        }
        children.push(Node::branch("Tasks", task));
    }
    Node::branch(name, children)
}
