//! `GET /api/vfs`, `GET /api/vfs/tree` and the preview, over a hub store with files of a node.

use agent_core::doc::{FileDoc, FileSource, FileStatus};
use agent_core::ids::{FileId, Inode, Rev};

use super::*;

fn put_file(store: &Store, path: &str) -> FileDoc {
    let source = FileSource::new("node-aaa".parse().unwrap(), path).unwrap();
    let now = agent_core::doc::now();
    let f = FileDoc {
        id: FileId::generate(),
        rev: Rev::NONE,
        name: source.name().to_owned(),
        source,
        size: 10,
        mtime: now,
        mime: None,
        inode: Inode::generate(),
        status: FileStatus::Active,
        first_seen: now,
        deleted_at: None,
        received_at: None,
    };
    store.put(f.clone().into()).unwrap();
    f
}

fn names(listing: &Value) -> Vec<&str> {
    listing["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect()
}

fn mount(steps: Value, strategy: &str) -> Value {
    json!({"mount_id": "m1", "source": {"node_id": "node-aaa", "export_path": "/home/me/Docs"},
        "steps": steps, "default_result": "exclude", "strategy": strategy,
        "conflict_policy": "last_write_wins"})
}

#[tokio::test]
async fn directories_list_through_the_rule_engine() {
    let api = api(100).await;
    let token = api.token().await;
    ensure_root_directory(&api.store).await.unwrap();
    for p in
        ["/home/me/Docs/a.pdf", "/home/me/Docs/b.txt", "/home/me/Docs/2024/c.pdf", "/home/me/Other/d.pdf"]
    {
        put_file(&api.store, p);
    }
    let pdfs = json!([{"op": "glob", "params": {"pattern": "**/*.pdf"}, "on_match": "include"}]);
    let (s, d) = api
        .call(
            "POST",
            "/api/vfs/directories/docs",
            Some(&token),
            Some(json!({"mounts": [mount(pdfs.clone(), "prefix_replace")]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");

    let (s, l) = api.call("GET", "/api/vfs?path=/docs", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(names(&l), ["2024", "a.pdf"]);
    assert_eq!(l["entries"][1]["kind"], "file");
    assert_eq!(l["entries"][0]["kind"], "directory");
    let (_, sub) = api.call("GET", "/api/vfs?path=docs/2024/", Some(&token), None).await;
    assert_eq!(names(&sub), ["c.pdf"]);
    let (_, root) = api.call("GET", "/api/vfs?path=/", Some(&token), None).await;
    assert_eq!(names(&root), ["docs"]);
    for missing in ["/nope", "/docs/nope", "/docs/a.pdf"] {
        let (s, e) = api.call("GET", &format!("/api/vfs?path={missing}"), Some(&token), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}: {e}");
        assert!(e["error"]["message"].is_string());
    }
    let (s, _) = api.call("GET", "/api/vfs?path=/docs/../x", Some(&token), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A new file below a mount shows at once: the changes feed invalidates the cached listing.
    put_file(&api.store, "/home/me/Docs/new.pdf");
    let (_, l) = api.call("GET", "/api/vfs?path=/docs", Some(&token), None).await;
    assert_eq!(names(&l), ["2024", "a.pdf", "new.pdf"]);

    // The tree: directories only.
    let (s, t) = api.call("GET", "/api/vfs/tree", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["path"], "/");
    assert_eq!(t["children"][0]["path"], "/docs");

    // An edit of the directory shows at once, cache or not.
    let rev = d["_rev"].as_u64().unwrap();
    let (s, e) = api
        .call(
            "PATCH",
            "/api/vfs/directories/docs",
            Some(&token),
            Some(json!({"_rev": rev, "mounts": [mount(json!([]), "prefix_replace")]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, l) = api.call("GET", "/api/vfs?path=/docs", Some(&token), None).await;
    // Default exclude and no steps: no file; the source's subdirectory still shows (synthesized
    // directories follow the source's structure, ARCHITECTURE §13.1).
    assert_eq!(names(&l), ["2024"]);
}

#[tokio::test]
async fn previews_save_nothing_and_bad_steps_are_named() {
    let api = api(100).await;
    let token = api.token().await;
    ensure_root_directory(&api.store).await.unwrap();
    put_file(&api.store, "/home/me/Docs/x/a.pdf");
    put_file(&api.store, "/home/me/Docs/b.txt");
    let all = json!([{"op": "size", "params": {"min_bytes": 1}, "on_match": "include"}]);
    let (s, l) = api
        .call(
            "POST",
            "/api/vfs/directories/flat/preview",
            Some(&token),
            Some(json!({"mounts": [mount(all, "flatten")]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(names(&l), ["a.pdf", "b.txt"]);
    let (s, _) = api.call("GET", "/api/vfs/directories/flat", Some(&token), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a preview saves nothing");
    let (s, l) =
        api.call("POST", "/api/vfs/directories/preview", Some(&token), Some(json!({"mounts": []}))).await;
    assert_eq!((s, names(&l).len()), (StatusCode::OK, 0), "the root can be previewed: {l}");

    let bad_steps = [
        json!([{"op": "regex", "params": {"pattern": "("}, "on_match": "include"}]),
        json!([{"op": "size", "params": {"min_bytes": 9, "max_bytes": 1}, "on_match": "include"}]),
        json!([{"op": "age", "params": {}, "on_match": "include"}]),
        json!([{"op": "size", "params": {"min_bytes": 1}, "on_match": "include"},
               {"op": "mime", "params": {"types": ["pdf"]}, "on_match": "include"}]),
    ];
    for steps in bad_steps {
        let n = steps.as_array().unwrap().len() - 1;
        for url in ["/api/vfs/directories/bad", "/api/vfs/directories/bad/preview"] {
            let (s, e) = api
                .call("POST", url, Some(&token), Some(json!({"mounts": [mount(steps.clone(), "flatten")]})))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{url} {steps}: {e}");
            let msg = e["error"]["message"].as_str().unwrap();
            assert!(msg.contains(&format!("mounts[0].steps[{n}]")), "{msg}");
        }
    }
    // Unknown ops and negative sizes are refused by the document model, also with a 400.
    for steps in [
        json!([{"op": "telepathy", "params": {}, "on_match": "include"}]),
        json!([{"op": "size", "params": {"min_bytes": -1}, "on_match": "include"}]),
    ] {
        let (s, e) = api
            .call(
                "POST",
                "/api/vfs/directories/bad/preview",
                Some(&token),
                Some(json!({"mounts": [mount(steps, "flatten")]})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    }
}
