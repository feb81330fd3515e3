//! The typed API client (`agent_core::api`) against a live `mosaicfs up`: typed answers and
//! errors, a session renewed after it was logged out, and the hub→agent command path end to
//! end (a reindex asked through the API, run by the agent, answered with its crawl).

use std::time::Duration;

use agent_core::doc::{Command, CommandStatus};
use agent_core::wire::ErrorCode;
use mosaicfs_tests::mounted::MountedUp;

#[test]
fn typed_answers_typed_errors_and_a_session_made_again_after_logout() {
    let mut up = MountedUp::new("");
    std::fs::write(up.node.watched.join("report.pdf"), b"%PDF-1.4 report").unwrap();
    up.launch();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let node_id: agent_core::ids::NodeId = up.node_id.parse().unwrap();
    let api = mosaicfs_tests::admin_api(&up.url, &up.node.data);
    rt.block_on(async {
        let me = api.whoami().await.expect("whoami");
        assert_eq!(me.role, agent_core::doc::CredentialRole::Admin);
        let found = wait_async("report.pdf at the hub", || async {
            let page = api.search("report", &Default::default()).await.ok()?;
            page.files.into_iter().find(|f| f.name == "report.pdf")
        })
        .await;
        assert_eq!(found.source.node_id, node_id);
        assert_eq!(api.file(&found.id).await.unwrap().size, 15);

        // A refusal arrives as the hub's code, not as text to match.
        let missing: agent_core::ids::FileId = "file::0192f0c0ffee".parse().unwrap();
        let e = api.file(&missing).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
        let e = api.node(&"node-nobody".parse().unwrap()).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");

        // Logged out at the hub: the next call makes a new session with the kept credential.
        let old = api.session().await.expect("a session").token;
        api.logout().await.unwrap();
        assert!(api.session().await.is_none());
        assert_eq!(api.whoami().await.unwrap().access_key_id, me.access_key_id);
        assert_ne!(api.session().await.unwrap().token, old);
    });
    up.stop();
}

#[test]
fn a_reindex_asked_through_the_hub_is_run_by_the_agent_and_answered() {
    let mut up = MountedUp::new("");
    let config = std::fs::read_to_string(&up.node.config).unwrap();
    std::fs::write(&up.node.config, config.replace("[watcher]\n", "[watcher]\nenabled = false\n")).unwrap();
    std::fs::write(up.node.watched.join("before.txt"), b"b").unwrap();
    up.launch();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let node_id: agent_core::ids::NodeId = up.node_id.parse().unwrap();
    let api = mosaicfs_tests::admin_api(&up.url, &up.node.data);
    rt.block_on(async {
        wait_async("before.txt at the hub", || async {
            api.search("before", &Default::default()).await.ok()?.files.into_iter().next()
        })
        .await;
        // Without a watcher, a new file shows only after a crawl: the command's effect is visible.
        std::fs::write(up.node.watched.join("after.txt"), b"a").unwrap();
        let issued = api.issue_command(&node_id, Command::Reindex).await.expect("issue");
        assert!(issued.result.is_none());
        assert_eq!(issued.command.node_id, node_id);
        let result = wait_async("the agent's answer", || async {
            let view = api.command(&issued.command.id).await.ok()?;
            view.result.filter(|r| r.status != CommandStatus::Running)
        })
        .await;
        assert_eq!(result.status, CommandStatus::Done, "{result:?}");
        let crawl = result.crawl.expect("the crawl summary");
        assert!(crawl.added >= 1 && crawl.seen >= 2, "{crawl:?}");
        assert!(result.finished_at.is_some());
        wait_async("after.txt at the hub", || async {
            api.search("after", &Default::default()).await.ok()?.files.into_iter().next()
        })
        .await;

        // A command to a node the hub does not know is refused with a typed error.
        let e = api.issue_command(&"node-nobody".parse().unwrap(), Command::Reindex).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
    });
    up.stop();
}

/// Polls `f` until it gives something (60 s at most).
async fn wait_async<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
