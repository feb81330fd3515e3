//! The agent protocol (ARCHITECTURE §5, §6.4): what agents send to `/api/agent/*` and what the
//! hub answers. Every answer of the hub to a push or a pull carries the protocol version it
//! speaks and its epoch: an agent refuses a hub it cannot talk to with a clear message, and an
//! agent that sees a new epoch (a hub restored from a backup) resets its checkpoints instead of
//! long-polling past everything (ARCHITECTURE §5.8).

use serde::{Deserialize, Serialize};

use crate::ids::{DocId, FileId, NodeId, Rev, Seq};

/// The version of the agent protocol this build speaks. A change that an older peer would
/// misread bumps it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The request header an agent sends its protocol version in (absent: version 1).
pub const PROTOCOL_HEADER: &str = "x-mosaicfs-protocol";

/// A hub's identity over time: drawn when its store is created, drawn again when it is restored
/// from a backup. Sequence numbers of one epoch mean nothing in another.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct HubEpoch(pub String);

impl HubEpoch {
    pub fn generate() -> HubEpoch {
        HubEpoch(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl std::fmt::Display for HubEpoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every push and changes answer says about the hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HubInfo {
    /// The protocol version the hub speaks ([`PROTOCOL_VERSION`]); 0 when an older hub did not say.
    #[serde(default)]
    pub protocol: u32,
    /// The hub's epoch; empty when an older hub did not say.
    #[serde(default = "no_epoch")]
    pub hub_epoch: HubEpoch,
}

fn no_epoch() -> HubEpoch {
    HubEpoch(String::new())
}

impl HubInfo {
    pub fn current(hub_epoch: HubEpoch) -> HubInfo {
        HubInfo { protocol: PROTOCOL_VERSION, hub_epoch }
    }

    /// `Err` with a message for people when this build cannot talk to that hub.
    pub fn check(&self) -> Result<(), String> {
        if self.protocol == PROTOCOL_VERSION {
            return Ok(());
        }
        Err(match self.protocol {
            0 => format!(
                "the hub does not say which protocol it speaks (a build older than protocol 1); \
                 this agent speaks protocol {PROTOCOL_VERSION}: upgrade the hub"
            ),
            hub if hub > PROTOCOL_VERSION => format!(
                "the hub speaks protocol {hub}, this agent protocol {PROTOCOL_VERSION}: upgrade this agent"
            ),
            hub => format!(
                "the hub speaks protocol {hub}, this agent protocol {PROTOCOL_VERSION}: upgrade the hub"
            ),
        })
    }
}

/// `POST /api/agent/push`: up to 200 of the signer's own documents (ARCHITECTURE §5.1).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Documents at the agent's revision, or tombstones `{_id, _rev, type, _deleted: true}`.
    pub docs: Vec<serde_json::Value>,
    /// The highest agent-local sequence number in the batch (monitoring only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_seq: Option<Seq>,
}

/// The answer to a push: one result per document, in order.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushAnswer {
    pub results: Vec<PushResult>,
    /// The hub's sequence number after the batch.
    pub last_seq: Seq,
    #[serde(flatten)]
    pub hub: HubInfo,
}

/// One document's result: written at `rev` with hub sequence `seq`, or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushResult {
    /// The document's `_id` as pushed (may be malformed when the document was).
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<Rev>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PushRefusal>,
}

impl PushResult {
    pub fn written(id: impl Into<String>, rev: Rev, seq: Seq) -> PushResult {
        PushResult { id: id.into(), ok: true, rev: Some(rev), seq: Some(seq), error: None }
    }

    pub fn refused(id: impl Into<String>, refusal: PushRefusal) -> PushResult {
        PushResult { id: id.into(), ok: false, rev: None, seq: None, error: Some(refusal) }
    }

    /// The refusal, when the document was not written (a result that says neither is read as
    /// an unknown refusal).
    pub fn refusal(&self) -> Option<PushRefusal> {
        match (&self.error, self.ok) {
            (Some(e), _) => Some(e.clone()),
            (None, true) => None,
            (None, false) => Some(PushRefusal::new(RefusalCode::Unknown, "refused without a reason")),
        }
    }
}

/// Why the hub did not write a pushed document (ARCHITECTURE §5.1 says what the agent does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushRefusal {
    pub code: RefusalCode,
    #[serde(default)]
    pub reason: String,
    /// With `stale`: the revision the hub holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_rev: Option<Rev>,
}

impl PushRefusal {
    pub fn new(code: RefusalCode, reason: impl Into<String>) -> PushRefusal {
        PushRefusal { code, reason: reason.into(), current_rev: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The signer does not own the document: dropped (permanent).
    NotOwner,
    /// The hub has this or a newer revision (`current_rev`).
    Stale,
    /// The document fails its typed parse or validation: dropped.
    Invalid,
    /// It collides with another document (a path owned by another file id, an id of another
    /// type): dropped; a re-crawl resolves it.
    Conflict,
    /// A file whose inode another file or directory holds: the agent draws a new inode for it
    /// and pushes it again.
    InodeTaken,
    /// A code this build does not know (a newer hub): dropped, logged.
    #[serde(other)]
    Unknown,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::NotOwner => "not_owner",
            RefusalCode::Stale => "stale",
            RefusalCode::Invalid => "invalid",
            RefusalCode::Conflict => "conflict",
            RefusalCode::InodeTaken => "inode_taken",
            RefusalCode::Unknown => "unknown",
        }
    }
}

/// `GET /api/agent/changes?since=&limit=&wait=&own=` (ARCHITECTURE §5.2).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// The last hub seq the node has applied (its pull checkpoint); 0 for everything.
    #[serde(default)]
    pub since: u64,
    /// Changes per answer, 1-2000 (default 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Seconds to hold the request when nothing visible changed, 0-60 (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<u64>,
    /// Ignored; makes repeated identical polls distinct for the replay guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `true`: only the signer's own live file and annotation documents, without waiting (the
    /// bootstrap of a node whose store was lost, ARCHITECTURE §5.2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own: bool,
}

/// One change as a node receives it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedChange {
    pub seq: Seq,
    pub id: DocId,
    pub rev: Rev,
    #[serde(default)]
    pub deleted: bool,
    /// The document as stored (a tombstone: `_id`, `_rev`, `type`, `_deleted`).
    pub doc: serde_json::Value,
}

/// A page of the changes feed.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Feed {
    pub changes: Vec<FeedChange>,
    /// The hub seq the scan reached, including changes this node does not see: its next `since`.
    pub last_seq: Seq,
    #[serde(flatten)]
    pub hub: HubInfo,
}

/// `POST /api/agent/heartbeat`: the signer's node and the hub's clock.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatAnswer {
    pub node_id: NodeId,
    /// Unix seconds.
    pub server_time: i64,
}

/// `POST /api/agent/transfer-token`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferTokenRequest {
    pub file_id: FileId,
}

/// A transfer token and what it allows.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferToken {
    pub token: String,
    /// The serving node (the token's audience).
    pub node_id: String,
    pub file_id: FileId,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The hub's transfer-token public key as a JWK (agents pin it when they join).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicKey {
    pub kty: String,
    pub crv: String,
    pub alg: String,
    /// The raw Ed25519 public key, base64url without padding.
    pub x: String,
}

impl PublicKey {
    pub fn ed25519(x: impl Into<String>) -> PublicKey {
        PublicKey { kty: "OKP".into(), crv: "Ed25519".into(), alg: "EdDSA".into(), x: x.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_answers_keep_their_wire_form() {
        let answer = PushAnswer {
            results: vec![
                PushResult::written("file::a", Rev(4), Seq(18)),
                PushResult::refused("dir::b", PushRefusal::new(RefusalCode::NotOwner, "owned by the hub")),
            ],
            last_seq: Seq(20),
            hub: HubInfo::current(HubEpoch("e1".into())),
        };
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "results": [
                    {"id": "file::a", "ok": true, "rev": 4, "seq": 18},
                    {"id": "dir::b", "ok": false, "error": {"code": "not_owner", "reason": "owned by the hub"}},
                ],
                "last_seq": 20, "protocol": PROTOCOL_VERSION, "hub_epoch": "e1",
            })
        );
        let back: PushAnswer = serde_json::from_value(json).unwrap();
        assert_eq!(back.results, answer.results);
        assert_eq!(back.results[1].refusal().unwrap().code, RefusalCode::NotOwner);
        assert_eq!(back.results[0].refusal(), None);
    }

    #[test]
    fn a_refusal_this_build_does_not_know_is_read_as_unknown() {
        let r: PushResult =
            serde_json::from_str(r#"{"id":"x","ok":false,"error":{"code":"quota","reason":"r"}}"#).unwrap();
        assert_eq!(r.refusal().unwrap().code, RefusalCode::Unknown);
    }

    #[test]
    fn a_hub_of_another_protocol_is_refused_with_a_message_saying_which_side_to_upgrade() {
        let e = HubEpoch("e".into());
        assert!(HubInfo::current(e.clone()).check().is_ok());
        let newer = HubInfo { protocol: PROTOCOL_VERSION + 1, hub_epoch: e.clone() }.check().unwrap_err();
        assert!(newer.contains("upgrade this agent"), "{newer}");
        let old: Feed = serde_json::from_str(r#"{"changes":[],"last_seq":3}"#).unwrap();
        let e = old.hub.check().unwrap_err();
        assert!(e.contains("upgrade the hub"), "{e}");
    }
}
