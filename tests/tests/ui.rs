//! The web UI in a real headless Chromium against a real hub (`mosaicfs server`) with two joined
//! agents: logging in, each page's real content, search as you type, downloading a file that
//! lives on an agent through the hub, live updates, login failures and session expiry.
//! Screenshots of each page at 1280×800 and 390×844 land in
//! `$CARGO_TARGET_TMPDIR/ui-screenshots`.

use std::path::PathBuf;
use std::time::Duration;

use mosaicfs_tests::browser::Browser;
use mosaicfs_tests::cluster::{Agent, Hub, FAST_AGENT};
use mosaicfs_tests::wait_for;
use sha2::Digest;

const DEADLINE: Duration = Duration::from_secs(60);

struct World {
    _hub_dir: tempfile::TempDir,
    hub: Hub,
    a: Agent,
    b: Agent,
    browser: Browser,
}

/// A hub whose nodes are observed offline after 3 s of silence, agents `laptop` (127.0.0.2,
/// serving its files) and `nas` (127.0.0.3), each with files indexed, and a browser.
fn world() -> World {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(hub_dir.path(), 3);
    let mut a =
        Agent::join(&hub, "127.0.0.2", &format!("{FAST_AGENT}[transfer]\nlisten = \"127.0.0.2:0\"\n"));
    let mut b = Agent::join(&hub, "127.0.0.3", FAST_AGENT);
    std::fs::write(a.node.watched.join("quarterly-report.pdf"), pattern(300_000)).unwrap();
    std::fs::write(a.node.watched.join("holiday.jpg"), b"jpeg").unwrap();
    std::fs::write(b.node.watched.join("backup-notes.txt"), b"notes").unwrap();
    a.start();
    b.start();
    for (agent, name) in [(&a, "quarterly-report.pdf"), (&b, "backup-notes.txt")] {
        wait_for(&format!("{name} at the hub"), DEADLINE, || {
            mosaicfs_tests::cluster::live_file_names(&hub.db(), &agent.node_id).contains(name).then_some(())
        });
    }
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    World { _hub_dir: hub_dir, hub, a, b, browser: Browser::start(shots) }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn log_in(w: &World) {
    let br = &w.browser;
    br.goto(&format!("{}/", w.hub.url()));
    assert!(br.url().contains("/login?next=%2F"), "not signed in: the login page, at {}", br.url());
    br.fill("#access_key_id", &w.hub.admin_key);
    br.fill("#secret", &w.hub.admin_secret);
    br.click("form button[type=submit]");
    br.wait_text("main h1", "Dashboard", DEADLINE);
}

#[test]
fn every_page_shows_the_hubs_real_data_and_a_file_on_an_agent_downloads_byte_for_byte() {
    let w = world();
    let br = &w.browser;
    br.goto(&format!("{}/login", w.hub.url()));
    br.screenshots("login");
    log_in(&w);

    // Dashboard: both machines in the health strip, online; the totals count their files.
    // (Node names are host names, the same for both here: nodes are told apart by id.)
    br.wait_source(&format!("data-node=\"{}\"", w.b.node_id), DEADLINE);
    assert!(br.source().contains(&format!("data-node=\"{}\"", w.a.node_id)));
    wait_for("both nodes online", DEADLINE, || {
        br.goto(&format!("{}/", w.hub.url()));
        (br.text("#total-online").as_deref() == Some("2")).then_some(())
    });
    let files: u64 = br.text("#total-files").unwrap().parse().unwrap();
    assert!(files >= 3, "{files} files indexed");
    br.screenshots("dashboard");

    // Nodes: a row per node, each linking to its page with its watch path and storage.
    br.goto(&format!("{}/nodes", w.hub.url()));
    br.wait_source(&format!("href=\"/nodes/{}\"", w.a.node_id), DEADLINE);
    assert!(br.source().contains(&format!("href=\"/nodes/{}\"", w.b.node_id)));
    assert!(br.text("#nodes").unwrap().contains("online"));
    br.screenshots("nodes");
    br.goto(&format!("{}/nodes?kind=bridge", w.hub.url()));
    assert!(!br.source().contains(&format!("href=\"/nodes/{}\"", w.a.node_id)), "no bridge here");
    br.goto(&format!("{}/nodes/{}", w.hub.url(), w.a.node_id));
    let main = br.wait_text("main", &w.a.node_id, DEADLINE);
    assert!(main.contains(&w.a.node.watched.display().to_string()), "its watch path: {main}");
    br.screenshots("node");

    // Search as you type: results without a page load, then the file's bytes through the hub.
    br.goto(&format!("{}/search", w.hub.url()));
    br.type_keys("#q", "quarterly");
    let results = br.wait_text("#results", "quarterly-report.pdf", DEADLINE);
    assert!(results.contains("1 files"), "{results}");
    assert!(br.url().ends_with("/search"), "no navigation: htmx swapped the results in");
    br.screenshots("search");
    let digest = br.eval_async(
        "const done = arguments[0];
         const a = document.querySelector('#results a[download]');
         fetch(a.href).then(r => r.arrayBuffer()).then(b => crypto.subtle.digest('SHA-256', b))
           .then(h => done(Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, '0')).join('')))
           .catch(e => done('error: ' + e));",
    );
    let want = hex(&sha2::Sha256::digest(pattern(300_000)));
    assert_eq!(digest.as_str(), Some(want.as_str()), "the download equals the source on the other machine");

    // "/" focuses the search box from any page.
    br.goto(&format!("{}/", w.hub.url()));
    let typed = br.eval_async(
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '/', bubbles: true, cancelable: true}));
         arguments[0](document.activeElement.id + '=' + document.activeElement.value + 'holiday')",
    );
    assert_eq!(typed.as_str(), Some("dash-search=holiday"));
}

#[test]
fn the_health_strip_turns_a_stopped_agent_offline_without_a_reload() {
    let mut w = world();
    log_in(&w);
    w.browser.wait_source(&format!("data-node=\"{}\"", w.b.node_id), DEADLINE);
    let marker = w.browser.eval_async("window.__same_page = 1; arguments[0](1)");
    assert_eq!(marker, 1);
    w.b.stop();
    // The hub observes it offline after 3 s of silence; the page hears of it over SSE.
    let banner = w.browser.wait_text("#health .banner", "1 node is offline", DEADLINE);
    assert!(!banner.contains('{'), "{banner}");
    let same = w.browser.eval_async("arguments[0](window.__same_page === 1)");
    assert_eq!(same, true, "updated in place, not reloaded");
    let _ = &w.a;
}

#[test]
fn login_failures_and_an_ended_session_are_said_in_the_page() {
    let w = world();
    let br = &w.browser;
    br.goto(&format!("{}/login", w.hub.url()));
    br.fill("#access_key_id", &w.hub.admin_key);
    br.fill("#secret", "not the secret");
    br.click("form button[type=submit]");
    let msg = br.wait_text("#login-error", "Wrong access key id or secret.", DEADLINE);
    assert!(!msg.contains('{'), "words, not JSON");
    log_in(&w);
    // Logging out ends the session: the next page is the login page again.
    br.click("header form button");
    br.wait_text("main h1", "", DEADLINE);
    assert!(br.url().ends_with("/login"), "{}", br.url());
    br.goto(&format!("{}/nodes", w.hub.url()));
    assert!(br.url().contains("/login?next=%2Fnodes"), "{}", br.url());
    // A session whose cookie is gone (expired) leads to the login page and back after it.
    log_in(&w);
    br.delete_cookies();
    br.goto(&format!("{}/nodes", w.hub.url()));
    assert!(br.url().contains("/login"), "{}", br.url());
    br.fill("#access_key_id", &w.hub.admin_key);
    br.fill("#secret", &w.hub.admin_secret);
    br.click("form button[type=submit]");
    br.wait_text("main h1", "Nodes", DEADLINE);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
