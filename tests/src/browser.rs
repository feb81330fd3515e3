//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromedriver`),
//! started by the test on a free port with a fresh profile and killed when dropped. Its calls
//! block (the cluster helpers are synchronous): each runs on the browser's own runtime.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use thirtyfour::prelude::*;

use crate::net::free_port;
use crate::{wait_for, Proc};

pub struct Browser {
    rt: tokio::runtime::Runtime,
    driver: Option<WebDriver>,
    _chromedriver: Proc,
    _profile: tempfile::TempDir,
    /// Where screenshots go: `$CARGO_TARGET_TMPDIR/ui-screenshots` (under the target dir).
    pub shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a Chromium session at 1280×800 with a fresh profile. The hub's
    /// certificate is self-signed: Chromium is told to accept it (loopback only).
    pub fn start(shots: PathBuf) -> Browser {
        let port = free_port("127.0.0.1");
        let driver_proc = Proc::spawn(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_for("chromedriver", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let profile = tempfile::tempdir().expect("profile dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let driver = rt.block_on(async {
            let mut caps = DesiredCapabilities::chrome();
            caps.set_binary("/usr/bin/chromium")?;
            for arg in [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--ignore-certificate-errors",
                "--window-size=1280,800",
            ] {
                caps.add_arg(arg)?;
            }
            caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))?;
            WebDriver::new(format!("http://127.0.0.1:{port}"), caps).await
        });
        let driver = driver.expect("a Chromium session (is chromium and chromium-driver installed?)");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser { rt, driver: Some(driver), _chromedriver: driver_proc, _profile: profile, shots }
    }

    fn d(&self) -> &WebDriver {
        self.driver.as_ref().expect("a live session")
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.d().goto(url)).unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub fn url(&self) -> String {
        self.rt.block_on(self.d().current_url()).expect("current url").to_string()
    }

    /// The page's HTML as the browser has it now (after htmx swaps).
    pub fn source(&self) -> String {
        self.rt.block_on(self.d().source()).expect("page source")
    }

    /// The visible text of the first element matching `css`, if there is one.
    pub fn text(&self, css: &str) -> Option<String> {
        self.rt.block_on(async {
            let e = self.d().find(By::Css(css)).await.ok()?;
            e.text().await.ok()
        })
    }

    /// Waits until the element `css` exists and its text contains `want`.
    pub fn wait_text(&self, css: &str, want: &str, limit: Duration) -> String {
        wait_for(&format!("{css} to contain {want:?}"), limit, || self.text(css).filter(|t| t.contains(want)))
    }

    /// Waits until the page's current HTML contains `want`.
    pub fn wait_source(&self, want: &str, limit: Duration) {
        wait_for(&format!("the page to contain {want:?}"), limit, || {
            self.source().contains(want).then_some(())
        })
    }

    pub fn fill(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let e = self.d().find(By::Css(css)).await?;
                e.clear().await?;
                e.send_keys(value).await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    /// Types `keys` into the focused element `css` without clearing it.
    pub fn type_keys(&self, css: &str, keys: &str) {
        self.rt
            .block_on(async { self.d().find(By::Css(css)).await?.send_keys(keys).await })
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.d().find(By::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Runs `script` (an async function body: `arguments[0]` is the callback) and returns its
    /// JSON result.
    pub fn eval_async(&self, script: &str) -> serde_json::Value {
        self.rt
            .block_on(async { self.d().execute_async(script, vec![]).await.map(|r| r.json().clone()) })
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    pub fn delete_cookies(&self) {
        self.rt.block_on(self.d().delete_all_cookies()).expect("delete cookies");
    }

    /// Screenshots the page at 1280×800 and 390×844 as `{name}-wide.png` and `{name}-narrow.png`.
    pub fn screenshots(&self, name: &str) {
        for (w, h, tag) in [(1280u32, 800u32, "wide"), (390, 844, "narrow")] {
            self.rt
                .block_on(async {
                    self.d().set_window_rect(0, 0, w, h).await?;
                    self.d().screenshot(&self.shots.join(format!("{name}-{tag}.png"))).await
                })
                .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        }
        self.rt.block_on(self.d().set_window_rect(0, 0, 1280, 800)).expect("window size");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            let _ = self.rt.block_on(d.quit());
        }
    }
}
