//! The agent's end of the hub→agent command path (ARCHITECTURE §5.9): `command` documents for
//! this node arrive in its replica through the pull; this task runs each one once and answers
//! with its own `command_result` document, which the push delivers to the hub.
//!
//! - A command is run when its result is missing, or still `running` from a process that ended
//!   before it finished (a crash or a restart: the work is done again).
//! - Commands run one at a time, in the order they were issued.
//! - What a command does is the [`Executor`]'s business (the agent wires the indexing worker).

use std::sync::Arc;
use std::time::Duration;

use crate::doc::{Command, CommandDoc, CommandResultDoc, CommandStatus, CrawlSummary, DocType, Document};
use crate::ids::{CommandResultId, NodeId, Rev, Seq};
use crate::store::{Store, StoreError};

/// How a command went, as the executor says.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: CommandStatus,
    pub message: String,
    pub crawl: Option<CrawlSummary>,
}

/// Runs commands (blocking: it is called on the blocking pool).
pub trait Executor: Send + Sync + 'static {
    fn run(&self, command: &Command, stop: &dyn Fn() -> bool) -> Outcome;
}

/// The running follower; `stop()` ends it (a command in progress is abandoned and run again at
/// the next start).
pub struct CommandRunner {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

const POLL: Duration = Duration::from_millis(200);

impl CommandRunner {
    pub fn spawn(store: Store, node: NodeId, executor: Arc<dyn Executor>) -> CommandRunner {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(follow(store, node, executor, stop_rx));
        CommandRunner { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn follow(
    store: Store,
    node: NodeId,
    executor: Arc<dyn Executor>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen = Seq(0);
    let mut looked_at = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let committed = store.committed_seq();
        if looked_at != Some(committed) {
            looked_at = Some(committed);
            let (s, n, e, stop) = (store.clone(), node.clone(), executor.clone(), stop.clone());
            let ran = tokio::task::spawn_blocking(move || {
                run_pending(&s, &n, e.as_ref(), seen, &move || *stop.borrow())
            })
            .await;
            match ran {
                Ok(Ok(next)) => seen = next,
                Ok(Err(e)) => tracing::warn!(operation = "command", error = %e, "commands not read"),
                Err(e) => tracing::warn!(operation = "command", error = %e, "command task failed"),
            }
        }
        let mut rx = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = rx.wait_for(|s| *s) => return,
        }
    }
}

/// Runs every command for `node` written after `since` that has no final result; returns how
/// far it looked.
pub fn run_pending(
    store: &Store,
    node: &NodeId,
    executor: &dyn Executor,
    since: Seq,
    stop: &dyn Fn() -> bool,
) -> Result<Seq, StoreError> {
    let mut reached = since;
    loop {
        let changes = store.changes_of_type_since(DocType::Command, reached, 100)?;
        let Some(last) = changes.last().map(|c| c.seq) else { return Ok(reached) };
        for change in changes {
            if change.deleted {
                continue;
            }
            let Ok(Document::Command(command)) = serde_json::from_str::<Document>(&change.body) else {
                tracing::warn!(operation = "command", id = %change.id, "unreadable command skipped");
                continue;
            };
            if command.node_id != *node || stop() {
                continue;
            }
            run_one(store, &command, executor, stop)?;
        }
        reached = last;
    }
}

fn run_one(
    store: &Store,
    command: &CommandDoc,
    executor: &dyn Executor,
    stop: &dyn Fn() -> bool,
) -> Result<(), StoreError> {
    let id = CommandResultId::for_command(&command.id);
    let existing = match store.get(&id.clone().into())? {
        Some(Document::CommandResult(r)) => Some(r),
        _ => None,
    };
    if existing.as_ref().is_some_and(|r| r.status != CommandStatus::Running) {
        return Ok(()); // answered before
    }
    let started = crate::doc::now();
    let mut result = CommandResultDoc {
        id,
        rev: existing.map_or(Rev::NONE, |r| r.rev),
        command_id: command.id.clone(),
        node_id: command.node_id.clone(),
        status: CommandStatus::Running,
        message: None,
        crawl: None,
        started_at: started,
        finished_at: None,
    };
    result.rev = store.put(Document::CommandResult(result.clone()))?.rev;
    tracing::info!(operation = "command", command_id = %command.id, command = command.command.name(), "command started");
    let outcome = match &command.command {
        Command::Unknown => Outcome {
            status: CommandStatus::Failed,
            message: "this agent does not know this command (a newer hub?)".into(),
            crawl: None,
        },
        known => executor.run(known, stop),
    };
    if stop() && outcome.status != CommandStatus::Done {
        return Ok(()); // left `running`: done again at the next start
    }
    let finished = crate::doc::now();
    tracing::info!(
        operation = "command",
        command_id = %command.id,
        status = ?outcome.status,
        duration_ms = (finished - started).num_milliseconds(),
        message = %outcome.message,
        "command finished"
    );
    result.status = outcome.status;
    result.message = Some(outcome.message);
    result.crawl = outcome.crawl;
    result.finished_at = Some(finished);
    store.put(Document::CommandResult(result))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ids::CommandId;

    struct Recorder(Mutex<Vec<Command>>);

    impl Executor for Recorder {
        fn run(&self, command: &Command, _stop: &dyn Fn() -> bool) -> Outcome {
            self.0.lock().unwrap().push(command.clone());
            Outcome { status: CommandStatus::Done, message: "did it".into(), crawl: None }
        }
    }

    fn command(node: &NodeId, command: Command) -> CommandDoc {
        CommandDoc {
            id: CommandId::generate(node),
            rev: Rev::NONE,
            node_id: node.clone(),
            command,
            issued_at: crate::doc::now(),
            issued_by: None,
        }
    }

    fn result(store: &Store, c: &CommandDoc) -> Option<CommandResultDoc> {
        match store.get(&CommandResultId::for_command(&c.id).into()).unwrap() {
            Some(Document::CommandResult(r)) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn each_command_for_this_node_runs_once_and_is_answered() {
        let store = Store::open_in_memory().unwrap();
        let (me, other): (NodeId, NodeId) = ("node-me".parse().unwrap(), "node-other".parse().unwrap());
        let mine = command(&me, Command::Reindex);
        let theirs = command(&other, Command::Reindex);
        let unknown = command(&me, Command::Unknown);
        for c in [&mine, &theirs, &unknown] {
            store.put(Document::Command(c.clone())).unwrap();
        }
        let rec = Recorder(Mutex::new(Vec::new()));
        let reached = run_pending(&store, &me, &rec, Seq(0), &|| false).unwrap();
        assert_eq!(*rec.0.lock().unwrap(), vec![Command::Reindex], "only this node's known command ran");
        let done = result(&store, &mine).unwrap();
        assert_eq!((done.status, done.message.as_deref()), (CommandStatus::Done, Some("did it")));
        assert!(done.finished_at.is_some());
        assert_eq!(result(&store, &unknown).unwrap().status, CommandStatus::Failed);
        assert!(result(&store, &theirs).is_none(), "another node's command is not answered here");

        // Looking again from the start runs nothing twice.
        run_pending(&store, &me, &rec, Seq(0), &|| false).unwrap();
        run_pending(&store, &me, &rec, reached, &|| false).unwrap();
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_command_left_running_by_a_crash_runs_again() {
        let store = Store::open_in_memory().unwrap();
        let me: NodeId = "node-me".parse().unwrap();
        let c = command(&me, Command::Reindex);
        store.put(Document::Command(c.clone())).unwrap();
        let crashed = CommandResultDoc {
            id: CommandResultId::for_command(&c.id),
            rev: Rev::NONE,
            command_id: c.id.clone(),
            node_id: me.clone(),
            status: CommandStatus::Running,
            message: None,
            crawl: None,
            started_at: crate::doc::now(),
            finished_at: None,
        };
        store.put(Document::CommandResult(crashed)).unwrap();
        let rec = Recorder(Mutex::new(Vec::new()));
        run_pending(&store, &me, &rec, Seq(0), &|| false).unwrap();
        assert_eq!(rec.0.lock().unwrap().len(), 1);
        assert_eq!(result(&store, &c).unwrap().status, CommandStatus::Done);
    }
}
