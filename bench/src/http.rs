//! HTTP benchmarks against a running control plane, over its real TLS listener.
//!
//! - `http-latency`: requests one after another on one keep-alive connection; per path,
//!   `--runs` timed requests after `--warmup` untimed ones; prints p50/p99/mean in ms and the
//!   number of hits (`files` in the answer, and `total` when the API counted).
//! - `http-load`: open-loop load at a fixed rate (requests are started on schedule whether or
//!   not earlier ones have answered, so a slow server shows up as latency, not as a lower
//!   rate); prints the achieved rate, p50/p99/max latency and errors.
//!
//! Both log in with the admin credential file the server wrote on first start
//! (`{data_dir}/secrets/admin.secret`: access key id, then secret) and accept the server's
//! self-signed certificate (loopback benchmark).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct Common {
    /// Base URL of the control plane, e.g. https://127.0.0.1:18443
    #[arg(long)]
    url: String,
    /// The admin credential file (`{data_dir}/secrets/admin.secret`).
    #[arg(long)]
    admin_secret: PathBuf,
}

#[derive(Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// `NAME=PATH` pairs: the figure name and the request path (with its query).
    #[arg(required = true)]
    requests: Vec<String>,
    #[arg(long, default_value_t = 200)]
    runs: usize,
    #[arg(long, default_value_t = 20)]
    warmup: usize,
}

#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    common: Common,
    /// Figure name prefix.
    #[arg(long)]
    name: String,
    /// Request path (with its query).
    #[arg(long)]
    path: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of load (after one second of warm-up at the same rate).
    #[arg(long, default_value_t = 10)]
    duration: u64,
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn login(c: &reqwest::Client, common: &Common) -> Result<String> {
    let text = std::fs::read_to_string(&common.admin_secret)
        .with_context(|| format!("reading {}", common.admin_secret.display()))?;
    let mut lines = text.lines();
    let (Some(key), Some(secret)) = (lines.next(), lines.next()) else {
        bail!("{}: expected the access key id and the secret on two lines", common.admin_secret.display());
    };
    let resp = c
        .post(format!("{}/api/auth/login", common.url))
        .json(&serde_json::json!({"access_key_id": key.trim(), "secret": secret.trim()}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("login: {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    let v: serde_json::Value = resp.json().await?;
    v["token"].as_str().map(str::to_owned).context("login answer without a token")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn latency(args: &LatencyArgs) -> Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let c = client()?;
        let token = login(&c, &args.common).await?;
        for pair in &args.requests {
            let (name, path) = pair.split_once('=').context("requests are NAME=PATH")?;
            let url = format!("{}{}", args.common.url, path);
            let mut times = Vec::with_capacity(args.runs);
            let mut last = serde_json::Value::Null;
            for i in 0..args.warmup + args.runs {
                let t = Instant::now();
                let resp = c.get(&url).bearer_auth(&token).send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                let dt = t.elapsed().as_secs_f64() * 1000.0;
                if !status.is_success() {
                    bail!("{name}: {status} {}", String::from_utf8_lossy(&body));
                }
                if i >= args.warmup {
                    times.push(dt);
                }
                if i + 1 == args.warmup + args.runs {
                    last = serde_json::from_slice(&body).unwrap_or_default();
                }
            }
            times.sort_by(|a, b| a.total_cmp(b));
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            println!("{name}.p50: {:.3} ms", percentile(&times, 0.5));
            println!("{name}.p99: {:.3} ms", percentile(&times, 0.99));
            println!("{name}.mean: {mean:.3} ms");
            println!("{name}.page_hits: {} files", last["files"].as_array().map_or(0, |a| a.len()));
            if let Some(total) = last["total"].as_u64() {
                println!("{name}.total_hits: {total} matches");
            }
        }
        Ok(())
    })
}

pub fn load(args: &LoadArgs) -> Result<()> {
    if args.rate == 0 || args.duration == 0 {
        bail!("--rate and --duration must be at least 1");
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(async {
        let c = client()?;
        let token: Arc<str> = Arc::from(login(&c, &args.common).await?);
        let url: Arc<str> = Arc::from(format!("{}{}", args.common.url, args.path));
        let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
        let warm = args.rate as usize;
        let total = warm + (args.rate * args.duration) as usize;
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let due = start + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let (c, token, url) = (c.clone(), token.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                // Latency counts from when the request was due (open loop: no coordinated omission).
                let ok = match c.get(&*url).bearer_auth(&*token).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (due.elapsed().as_secs_f64() * 1000.0, ok)
            }));
        }
        let sent_over = start.elapsed().as_secs_f64();
        let mut times = Vec::with_capacity(total - warm);
        let mut errors = 0u64;
        for (i, t) in tasks.into_iter().enumerate() {
            let (ms, ok) = t.await?;
            if i >= warm {
                if !ok {
                    errors += 1;
                }
                times.push(ms);
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let name = &args.name;
        println!("{name}.target_rate: {} req/s", args.rate);
        println!("{name}.achieved_rate: {:.0} req/s", total as f64 / sent_over);
        println!("{name}.p50: {:.3} ms", percentile(&times, 0.5));
        println!("{name}.p99: {:.3} ms", percentile(&times, 0.99));
        println!("{name}.max: {:.3} ms", times.last().copied().unwrap_or(f64::NAN));
        println!("{name}.errors: {errors} requests");
        Ok(())
    })
}
