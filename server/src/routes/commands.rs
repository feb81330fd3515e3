//! `/api/nodes/{node_id}/commands`: asking one node to do something (ARCHITECTURE §5.9). The
//! hub writes a `command` document for the node; the node's changes feed delivers it, the node
//! runs it and pushes its `command_result`. The hub never opens a connection to an agent, so a
//! command to an offline node waits until it comes back.

use agent_core::doc::{Command, CommandDoc, CommandResultDoc, Document};
use agent_core::ids::{CommandId, CommandResultId, NodeDocId, NodeId, Rev};
use agent_core::wire::commands::{CommandView, NewCommand};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Session;
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// `POST /api/nodes/{node_id}/commands`: the command is delivered with the node's next pull.
#[utoipa::path(
    post,
    path = "/api/nodes/{node_id}/commands",
    operation_id = "issue_command",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    request_body = NewCommand,
    responses((status = 201, body = CommandView), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn issue(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<NewCommand>,
) -> Result<(StatusCode, Json<CommandView>), ApiError> {
    let node: NodeId = raw.parse()?;
    if body.command == Command::Unknown {
        return Err(ApiError::BadRequest("unknown command".into()));
    }
    let doc = CommandDoc {
        id: CommandId::generate(&node),
        rev: Rev::NONE,
        node_id: node.clone(),
        command: body.command,
        issued_at: agent_core::doc::now(),
        issued_by: Some(session.claims.sub.clone()),
    };
    let command = state
        .store
        .run(move |s| {
            match s.get(&NodeDocId::for_node(&node).into())? {
                Some(Document::Node(n)) if n.enabled => {}
                Some(Document::Node(_)) => {
                    return Ok(Err(ApiError::Conflict(format!("node {node} is disabled"))));
                }
                _ => return Ok(Err(ApiError::NotFound(format!("node {node}")))),
            }
            let mut doc = doc;
            doc.rev = s.put(Document::Command(doc.clone()))?.rev;
            Ok(Ok(doc))
        })
        .await??;
    tracing::info!(operation = "command.issue", node_id = %command.node_id, command_id = %command.id,
        command = command.command.name(), "command issued");
    Ok((StatusCode::CREATED, Json(CommandView { command, result: None })))
}

/// `GET /api/nodes/{node_id}/commands/{command}`: the command and the node's answer so far.
#[utoipa::path(
    get,
    path = "/api/nodes/{node_id}/commands/{command}",
    operation_id = "get_command",
    tag = "nodes",
    params(
        ("node_id" = String, Path, description = "Node id"),
        ("command" = String, Path, description = "The command's id below the node (its last part)"),
    ),
    responses((status = 200, body = CommandView), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    _session: Session,
    Path((raw_node, raw_command)): Path<(String, String)>,
) -> Result<Json<CommandView>, ApiError> {
    let node: NodeId = raw_node.parse()?;
    let id: CommandId = format!("command::{node}::{raw_command}").parse()?;
    let result_id = CommandResultId::for_command(&id);
    let (command, result) =
        state.store.run(move |s| Ok((s.get(&id.clone().into())?, s.get(&result_id.into())?))).await?;
    let Some(Document::Command(command)) = command else {
        return Err(ApiError::NotFound(format!("command {raw_command} of node {raw_node}")));
    };
    let result: Option<CommandResultDoc> = match result {
        Some(Document::CommandResult(r)) => Some(r),
        _ => None,
    };
    Ok(Json(CommandView { command, result }))
}
