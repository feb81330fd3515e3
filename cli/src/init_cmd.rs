//! `mosaicfs agent init`: joins this machine to a control plane (plan §2.9, ARCHITECTURE §6.7).
//!
//! 1. The control-plane URL (validated: `https://host[:port]`).
//! 2. Its certificate fingerprint, shown and confirmed (or given with `--server-fingerprint`),
//!    then pinned: every later request goes only to the holder of that certificate.
//! 3. An admin credential, used once to log in (the secret read without echo, or from stdin).
//! 4. `POST /api/nodes/register`: a credential bound to this node; its secret is kept in the OS
//!    keychain or a 0600 file, the hub's transfer-token key in `{data_dir}/keys/hub_transfer.pub`.
//! 5. `agent.toml` written (and read back through the same validation as every start).
//! 6. A systemd user unit (Linux) or launchd agent (macOS) from `installer/service/`, started.
//!
//! Every prompt has a flag, so scripts and containers run it non-interactively.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agent_core::auth::Secret;
use agent_core::config::{AgentConfig, SecretRef};
use agent_core::http::{error_chain, fetch_fingerprint, normalize_fingerprint, pinned_client};
use agent_core::secrets::{self, Backend};
use clap::{Args, ValueEnum};

use crate::CliError;

const SYSTEMD_UNIT: &str = include_str!("../../installer/service/mosaicfs-agent.service");
const LAUNCHD_PLIST: &str = include_str!("../../installer/service/io.mosaicfs.agent.plist");

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SecretStoreArg {
    /// The OS keychain when it answers, else a 0600 file.
    Auto,
    Keychain,
    File,
}

#[derive(Args)]
pub struct InitArgs {
    /// The control plane, e.g. https://nas.local:8443 (asked when absent).
    #[arg(long)]
    server: Option<String>,
    /// The control plane's certificate SHA-256 fingerprint to pin (asked to confirm when absent).
    #[arg(long)]
    server_fingerprint: Option<String>,
    /// An admin access key id (asked when absent).
    #[arg(long)]
    access_key_id: Option<String>,
    /// Read the admin secret from the first line of stdin instead of a no-echo prompt.
    #[arg(long)]
    secret_stdin: bool,
    /// A directory to index (repeat for several; asked when absent).
    #[arg(long = "watch")]
    watch: Vec<PathBuf>,
    /// This node's name in the UI (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Where to write the agent configuration [default: as `mosaicfs agent`].
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The agent's data directory [default: $MOSAICFS_DATA_DIR, /var/lib/mosaicfs for root,
    /// else the per-user data directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to keep this node's secret.
    #[arg(long, value_enum, default_value_t = SecretStoreArg::Auto)]
    secret_store: SecretStoreArg,
    /// Do not install or start a service (systemd user unit / launchd agent).
    #[arg(long)]
    no_service: bool,
    /// Replace an existing configuration file.
    #[arg(long)]
    force: bool,
    /// Mount the virtual tree here (a failure then stops the agent's start) [default for a
    /// desktop user: ~/MosaicFS, and the agent runs on without it if it cannot be mounted;
    /// for root or without a graphical session: no mount].
    #[arg(long, conflicts_with = "no_mount")]
    mount_point: Option<PathBuf>,
    /// Do not mount the virtual tree.
    #[arg(long)]
    no_mount: bool,
    /// The address this node serves its files to other nodes on, like 0.0.0.0:7443
    /// [default: 0.0.0.0:7443, or any free port if that one is busy].
    #[arg(long)]
    transfer_listen: Option<std::net::SocketAddr>,
}

/// Where `agent init` puts the mount: `(path, is the desktop default)`.
pub fn mount_choice(explicit: Option<&Path>, no_mount: bool) -> Option<(PathBuf, bool)> {
    if no_mount {
        return None;
    }
    match explicit {
        Some(p) => Some((p.to_owned(), false)),
        None => agent_core::config::desktop_mount_point().map(|p| (p, true)),
    }
}

/// The `[vfs]` (and `[transfer]`) sections of a written config.
pub fn optional_sections(
    mount: Option<&(PathBuf, bool)>,
    transfer_listen: Option<std::net::SocketAddr>,
) -> String {
    let mut out = String::new();
    if let Some((path, default)) = mount {
        out.push_str("\n[vfs]\n");
        if *default {
            out.push_str(
                "# The desktop default: if it cannot be mounted (no FUSE, busy) the agent runs without it\n\
                 # and reports why; remove `mount_point_is_default` to make a failed mount stop the start.\n",
            );
        }
        out.push_str(&format!("mount_point = {}\n", toml_string(&path.to_string_lossy())));
        if *default {
            out.push_str("mount_point_is_default = true\n");
        }
    }
    if let Some(addr) = transfer_listen {
        out.push_str(&format!("\n[transfer]\nlisten = {}\n", toml_string(&addr.to_string())));
    }
    out
}

/// Reads a line from the terminal (prompting) or fails with a hint about the flag.
fn ask(prompt: &str, flag: &str) -> Result<String, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!("{prompt}: stdin is not a terminal; pass {flag}")));
    }
    eprint!("{prompt}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// `https://host[:port]` without a path; anything else is a usage error.
pub fn validate_url(raw: &str) -> Result<String, CliError> {
    let bad = |why: &str| CliError::Usage(format!("--server {raw:?}: {why}"));
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad("must start with https:// (the control plane only speaks TLS)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(bad("must be just https://host[:port]"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub fn run(args: InitArgs) -> Result<(), CliError> {
    let server = match &args.server {
        Some(s) => s.clone(),
        None => ask("Control plane URL (https://host:8443)", "--server URL")?,
    };
    let server = validate_url(&server)?;
    let config_path = args.config.clone().unwrap_or_else(crate::default_config_path);
    if config_path.exists() && !args.force {
        return Err(CliError::Usage(format!(
            "{} exists; pass --force to replace it (this node keeps its id)",
            config_path.display()
        )));
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(agent_core::config::default_data_dir);
    let watch: Vec<PathBuf> = if args.watch.is_empty() {
        let line = ask("Directories to index (separated by spaces)", "--watch DIR")?;
        line.split_whitespace().map(PathBuf::from).collect()
    } else {
        args.watch.clone()
    };
    if watch.is_empty() {
        return Err(CliError::Usage("name at least one directory to index (--watch DIR)".into()));
    }
    let watch: Vec<PathBuf> = watch
        .iter()
        .map(|w| {
            std::fs::canonicalize(w).map_err(|e| CliError::Usage(format!("--watch {}: {e}", w.display())))
        })
        .collect::<Result<_, _>>()?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(join(&args, &server, &config_path, &data_dir, &watch))
}

async fn join(
    args: &InitArgs,
    server: &str,
    config_path: &Path,
    data_dir: &Path,
    watch: &[PathBuf],
) -> Result<(), CliError> {
    // 2. Pin the certificate.
    let seen = fetch_fingerprint(server).await.map_err(|e| CliError::Runtime(e.into()))?;
    let pinned = match &args.server_fingerprint {
        Some(given) => {
            let want = normalize_fingerprint(given).ok_or_else(|| {
                CliError::Usage(format!("--server-fingerprint {given:?} is not a SHA-256 fingerprint"))
            })?;
            if want != seen {
                return Err(CliError::Runtime(anyhow::anyhow!(
                    "{server} presented certificate {seen}, not the pinned {want}: refusing to send credentials"
                )));
            }
            want
        }
        None => {
            eprintln!(
                "The control plane at {server} presented a certificate with SHA-256 fingerprint\n  {seen}"
            );
            let answer = ask(
                "Is this the fingerprint `mosaicfs up` or `mosaicfs server` printed there? [y/N]",
                "--server-fingerprint FP",
            )?;
            if !matches!(answer.to_lowercase().as_str(), "y" | "yes") {
                return Err(CliError::Usage("fingerprint not confirmed; nothing was changed".into()));
            }
            seen
        }
    };
    let client = pinned_client(&pinned).map_err(|e| CliError::Runtime(e.into()))?;

    // 3. Log in once with the admin credential.
    let key = match &args.access_key_id {
        Some(k) => k.clone(),
        None => ask("Admin access key id", "--access-key-id KEY")?,
    };
    let secret = if args.secret_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim().to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Admin secret (not shown): ")?.trim().to_owned()
    } else {
        return Err(CliError::Usage("the admin secret: stdin is not a terminal; pass --secret-stdin".into()));
    };
    let login = post(
        &client,
        &format!("{server}/api/auth/login"),
        None,
        &serde_json::json!({"access_key_id": key.trim(), "secret": secret}),
    )
    .await?;
    let token =
        login["token"].as_str().ok_or_else(|| anyhow::anyhow!("login answered without a token"))?.to_owned();

    // 4. Register this node and keep its secret.
    let node_id =
        agent_core::config::load_or_create_node_id(&data_dir.join("node_id")).map_err(CliError::Config)?;
    let name = args.name.clone().unwrap_or_else(agent_core::host::hostname);
    let reg = post(
        &client,
        &format!("{server}/api/nodes/register"),
        Some(&token),
        &serde_json::json!({"node_id": node_id, "name": format!("{name} ({node_id})")}),
    )
    .await?;
    let field = |k: &str| {
        reg[k].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("registration answer without {k}"))
    };
    let (access_key, node_secret, hub_key) = (
        field("access_key_id")?,
        field("secret")?,
        reg["hub_transfer_public_key"]["x"].as_str().unwrap_or_default().to_owned(),
    );
    let prefer = match args.secret_store {
        SecretStoreArg::File => Backend::File,
        SecretStoreArg::Auto | SecretStoreArg::Keychain => Backend::Keychain,
    };
    let must_keychain = args.secret_store == SecretStoreArg::Keychain;
    let secrets_dir = data_dir.join("secrets");
    let ak = access_key.clone();
    let stored = tokio::task::spawn_blocking(move || {
        if must_keychain {
            secrets::keychain_available().map_err(|why| {
                anyhow::anyhow!("--secret-store keychain: the OS keychain is unavailable: {why}")
            })?;
        }
        secrets::store_new(prefer, &secrets_dir, &ak, &Secret::from_string(node_secret))
            .map_err(anyhow::Error::from)
    })
    .await??;
    let _ = post(&client, &format!("{server}/api/auth/logout"), Some(&token), &serde_json::json!({})).await;
    write_file(&data_dir.join("keys/hub_transfer.pub"), &format!("{hub_key}\n"))?;

    // 5. agent.toml, checked by the same loader every start uses.
    let mount = mount_choice(args.mount_point.as_deref(), args.no_mount);
    if let Some((p, _)) = &mount {
        if !p.is_absolute() {
            return Err(CliError::Usage(format!("--mount-point {}: not an absolute path", p.display())));
        }
    }
    let secret_ref = match &stored {
        SecretRef::File(p) => format!("file:{}", p.display()),
        SecretRef::Keyring { service, account } => format!("keyring:{service}/{account}"),
        SecretRef::Env(v) => format!("env:{v}"),
    };
    let q = |s: &str| toml_string(s);
    let watch_list = watch.iter().map(|w| q(&w.to_string_lossy())).collect::<Vec<_>>().join(", ");
    let text = format!(
        "# Written by `mosaicfs agent init` on {now}. Reference: docs/ARCHITECTURE.md §8.1.\n\
         data_dir = {data}\n\
         watch_paths = [{watch_list}]\n\n\
         [control_plane]\n\
         url = {url}\n\
         access_key_id = {key}\n\
         # Where the secret lives (never the secret itself).\n\
         secret = {secret}\n\
         server_fingerprint = {fp}\n{sections}",
        now = chrono::Utc::now().to_rfc3339(),
        sections = optional_sections(mount.as_ref(), args.transfer_listen),
        data = q(&data_dir.to_string_lossy()),
        url = q(server),
        key = q(&access_key),
        secret = q(&secret_ref),
        fp = q(&pinned),
    );
    write_file(config_path, &text)?;
    AgentConfig::load(config_path).map_err(CliError::Config)?;
    let kdf: agent_core::doc::KdfParams = serde_json::from_value(reg["kdf"].clone())
        .map_err(|e| anyhow::anyhow!("registration answer: kdf: {e}"))?;
    verify_signed(&client, server, &stored, &access_key, &kdf, &node_id).await?;

    // 6. The service.
    let service = if args.no_service {
        "not installed (--no-service)".to_owned()
    } else {
        install_service(config_path)?
    };
    let where_secret = match &stored {
        SecretRef::Keyring { .. } => "the OS keychain".to_owned(),
        SecretRef::File(p) => format!("{} (mode 0600)", p.display()),
        SecretRef::Env(v) => format!("${v}"),
    };
    crate::print_stdout(&format!(
        "Joined {server} as node {node_id} ({name}); the hub accepts its signed requests.\n  \
         credential:  {access_key}, secret in {where_secret}\n  \
         pinned:      certificate {pinned}\n  \
         config:      {}\n  \
         indexing:    {}\n  \
         mount:       {}\n  \
         service:     {service}\n",
        config_path.display(),
        watch.iter().map(|w| w.display().to_string()).collect::<Vec<_>>().join(", "),
        match &mount {
            Some((p, true)) => format!("{} (the desktop default)", p.display()),
            Some((p, false)) => p.display().to_string(),
            None => "none".to_owned(),
        },
    ));
    Ok(())
}

/// Reads the stored secret back (through the keychain or file, as the agent will) and makes
/// one signed agent request: the hub must know this node by it.
async fn verify_signed(
    client: &reqwest::Client,
    server: &str,
    stored: &SecretRef,
    access_key: &str,
    kdf: &agent_core::doc::KdfParams,
    node_id: &agent_core::ids::NodeId,
) -> Result<(), CliError> {
    let r = stored.clone();
    let kdf = kdf.clone();
    let key = tokio::task::spawn_blocking(move || -> anyhow::Result<agent_core::auth::Verifier> {
        let secret = secrets::read(&r)?;
        Ok(agent_core::auth::derive_verifier(&secret, &kdf)?)
    })
    .await??;
    let access: agent_core::ids::AccessKeyId = access_key.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = "/api/agent/credentials";
    let header = agent_core::auth::AuthHeader::sign(
        &access,
        &key,
        "GET",
        path,
        "",
        chrono::Utc::now().timestamp(),
        b"",
    );
    let resp = client
        .get(format!("{server}{path}"))
        .header("authorization", header.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{server}{path}: {}", error_chain(&e)))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() || v["node_id"].as_str() != Some(node_id.as_str()) {
        return Err(CliError::Runtime(anyhow::anyhow!(
            "the hub did not accept this node's signed request ({status}): {}",
            v["error"]["message"].as_str().unwrap_or("no details")
        )));
    }
    Ok(())
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> Result<serde_json::Value, CliError> {
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| anyhow::anyhow!("{url}: {}", error_chain(&e)))?;
    let status = resp.status();
    let value: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        let msg = value["error"]["message"].as_str().unwrap_or("no details");
        return Err(CliError::Runtime(anyhow::anyhow!("{url}: {status}: {msg}")));
    }
    Ok(value)
}

/// Installs and starts the service for this platform; says what happened.
fn install_service(config: &Path) -> Result<String, CliError> {
    let bin = std::env::current_exe()?;
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let fill = |t: &str, log: &Path| {
        t.replace("@BIN@", &bin.to_string_lossy())
            .replace("@CONFIG@", &config.to_string_lossy())
            .replace("@LOG@", &log.to_string_lossy())
    };
    if cfg!(target_os = "macos") {
        let plist = home.join("Library/LaunchAgents/io.mosaicfs.agent.plist");
        write_file(&plist, &fill(LAUNCHD_PLIST, &home.join("Library/Logs/mosaicfs-agent.log")))?;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let ok = run_quiet("launchctl", &["bootstrap", &format!("gui/{uid}"), &plist.to_string_lossy()]);
        return Ok(if ok {
            format!("launchd agent io.mosaicfs.agent started ({})", plist.display())
        } else {
            format!(
                "launchd agent written to {} but not started: run `launchctl bootstrap gui/{uid} {}`",
                plist.display(),
                plist.display()
            )
        });
    }
    let unit = home.join(".config/systemd/user/mosaicfs-agent.service");
    write_file(&unit, &fill(SYSTEMD_UNIT, Path::new("")))?;
    if !user_systemd_available() {
        return Ok(format!(
            "unit written to {} but no user systemd answers here: run `mosaicfs agent --config {}` under your supervisor",
            unit.display(),
            config.display()
        ));
    }
    let started = run_quiet("systemctl", &["--user", "daemon-reload"])
        && run_quiet("systemctl", &["--user", "enable", "--now", "mosaicfs-agent.service"]);
    Ok(if started {
        "systemd user unit mosaicfs-agent.service enabled and started (journalctl --user -u mosaicfs-agent)"
            .into()
    } else {
        format!(
            "unit written to {} but `systemctl --user enable --now mosaicfs-agent` failed",
            unit.display()
        )
    })
}

fn user_systemd_available() -> bool {
    Path::new("/run/systemd/system").exists() && run_quiet("systemctl", &["--user", "show-environment"])
}

fn run_quiet(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_host_port_only() {
        assert_eq!(validate_url("https://nas.local:8443/").unwrap(), "https://nas.local:8443");
        assert_eq!(validate_url(" https://127.0.0.1:8443 ").unwrap(), "https://127.0.0.1:8443");
        for bad in
            ["http://nas:8443", "nas:8443", "https://", "https://nas/api", "https://u@nas", "https://nas?x=1"]
        {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_templates_have_their_placeholders() {
        assert!(SYSTEMD_UNIT.contains("ExecStart=@BIN@ agent --config @CONFIG@"));
        assert!(LAUNCHD_PLIST.contains("<string>@BIN@</string>") && LAUNCHD_PLIST.contains("@CONFIG@"));
    }
}
