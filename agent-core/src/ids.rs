//! Typed identifiers. No bare `String` id crosses a module boundary.
//!
//! Every document `_id` is `{type prefix}::{rest}` (see docs/ARCHITECTURE.md, "Document ids").
//! A typed document id *is* its `_id` string: `FileId` is `file::0192…`, and the same string is
//! used wherever another document refers to that file (annotation, label assignment), so there is
//! exactly one spelling of every id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A malformed identifier, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn id_error(kind: &'static str, value: &str, reason: &'static str) -> IdError {
    IdError { kind, value: value.chars().take(200).collect(), reason }
}

/// Characters allowed in the parts of a document id: printable, no whitespace, no `/`.
fn valid_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(s).map_err(|reason| id_error($kind, s, reason))?;
                Ok(Self(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A document id with a known type prefix.
macro_rules! doc_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        string_id!($(#[$meta])* $name, $prefix, |s| {
            let rest = s.strip_prefix(concat!($prefix, "::")).ok_or("wrong type prefix")?;
            if rest.split("::").all(valid_part) { Ok(()) } else { Err("empty or invalid part") }
        });

        impl $name {
            /// The `_id` type prefix, without the `::` separator.
            pub const PREFIX: &'static str = $prefix;
        }

        impl From<$name> for DocId {
            fn from(id: $name) -> DocId {
                DocId(id.0)
            }
        }

        impl From<&$name> for DocId {
            fn from(id: &$name) -> DocId {
                DocId(id.0.clone())
            }
        }
    };
}

string_id!(
    /// Any document's `_id`: the key of the store. Always `{prefix}::{rest}`.
    DocId,
    "document id",
    |s| match s.split_once("::") {
        Some((p, rest)) if valid_part(p) && rest.split("::").all(valid_part) => Ok(()),
        _ => Err("expected {type}::{id}"),
    }
);

impl DocId {
    /// The type prefix (`file`, `node`, ...).
    pub fn prefix(&self) -> &str {
        self.0.split_once("::").map(|(p, _)| p).unwrap_or("")
    }
}

string_id!(
    /// A node's id: `[a-z0-9][a-z0-9-]{2,62}`, generated on first run as `node-` + 16 hex digits.
    NodeId,
    "node id",
    |s| {
        let ok_len = (3..=63).contains(&s.len());
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_start = s.bytes().next().is_some_and(|b| b != b'-');
        if ok_len && ok_chars && ok_start {
            Ok(())
        } else {
            Err("expected 3-63 characters of a-z, 0-9 and '-', not starting with '-'")
        }
    }
);

impl NodeId {
    /// A fresh random node id.
    pub fn generate() -> NodeId {
        NodeId(format!("node-{:016x}", rand::random::<u64>()))
    }
}

string_id!(
    /// A credential's public half: `MFS` + 17 characters of `[A-Z2-7]`.
    AccessKeyId,
    "access key id",
    |s| {
        let ok = s.len() == 20
            && s.starts_with("MFS")
            && s[3..].bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
        if ok {
            Ok(())
        } else {
            Err("expected MFS followed by 17 characters of A-Z and 2-7")
        }
    }
);

impl AccessKeyId {
    pub fn generate() -> AccessKeyId {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let tail: String = (0..17).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
        AccessKeyId(format!("MFS{tail}"))
    }
}

string_id!(
    /// A plugin's name: the file name of its executable or socket, `[a-z0-9][a-z0-9_-]{0,63}`.
    PluginName,
    "plugin name",
    |s| {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && !s.starts_with(['-', '_']);
        if ok {
            Ok(())
        } else {
            Err("expected 1-64 characters of a-z, 0-9, '-' and '_'")
        }
    }
);

string_id!(
    /// A label: any non-empty text up to 128 characters without control characters.
    Label,
    "label",
    |s| {
        if !s.trim().is_empty() && s.chars().count() <= 128 && !s.chars().any(char::is_control) {
            Ok(())
        } else {
            Err("expected 1-128 characters, not blank, no control characters")
        }
    }
);

doc_id!(
    /// `file::{uuid v7}` — assigned at first sight, kept across re-crawls and renames. UUID v7 is
    /// time-ordered, so a crawl appends to the store's primary-key b-tree instead of scattering
    /// writes over it.
    FileId,
    "file"
);

impl FileId {
    pub fn generate() -> FileId {
        FileId(format!("file::{}", uuid::Uuid::now_v7().as_simple()))
    }
    /// The part after `file::`, used inside derived ids.
    pub fn key(&self) -> &str {
        &self.0["file::".len()..]
    }
}

doc_id!(
    /// `dir::root` for the root, `dir::{uuid v4}` for the others (a directory keeps its id when it
    /// is moved, so the id does not derive from the path).
    DirId,
    "dir"
);

impl DirId {
    pub fn root() -> DirId {
        DirId("dir::root".into())
    }
    pub fn generate() -> DirId {
        DirId(format!("dir::{}", uuid::Uuid::new_v4().as_simple()))
    }
}

doc_id!(
    /// `node::{node_id}` (deterministic).
    NodeDocId,
    "node"
);

impl NodeDocId {
    pub fn for_node(node: &NodeId) -> NodeDocId {
        NodeDocId(format!("node::{node}"))
    }
}

doc_id!(
    /// `credential::{access_key_id}` (deterministic).
    CredentialId,
    "credential"
);

impl CredentialId {
    pub fn for_key(key: &AccessKeyId) -> CredentialId {
        CredentialId(format!("credential::{key}"))
    }
}

doc_id!(
    /// `status::{node_id}` (deterministic: one agent_status document per node).
    AgentStatusId,
    "status"
);

impl AgentStatusId {
    pub fn for_node(node: &NodeId) -> AgentStatusId {
        AgentStatusId(format!("status::{node}"))
    }
}

doc_id!(
    /// `utilization::{node_id}::{captured_at, unix seconds}` (deterministic).
    UtilizationId,
    "utilization"
);

impl UtilizationId {
    pub fn for_snapshot(node: &NodeId, unix_secs: i64) -> UtilizationId {
        UtilizationId(format!("utilization::{node}::{unix_secs}"))
    }
}

doc_id!(
    /// `command::{node_id}::{uuid v4}`: something the hub asks one node to do.
    CommandId,
    "command"
);

impl CommandId {
    /// A new command for `node`.
    pub fn generate(node: &NodeId) -> CommandId {
        CommandId(format!("command::{node}::{}", uuid::Uuid::new_v4().simple()))
    }

    /// The part after `command::` (`{node_id}::{uuid}`).
    pub fn key(&self) -> &str {
        &self.0["command::".len()..]
    }

    /// The node the command is for, as its id says.
    pub fn node(&self) -> Option<NodeId> {
        self.key().split("::").next()?.parse().ok()
    }
}

doc_id!(
    /// `command_result::{node_id}::{uuid v4}` (deterministic: the answer to `command::…` with
    /// the same key).
    CommandResultId,
    "command_result"
);

impl CommandResultId {
    pub fn for_command(command: &CommandId) -> CommandResultId {
        CommandResultId(format!("command_result::{}", command.key()))
    }
}

doc_id!(
    /// `label_file::{file key}` (deterministic: one assignment document per file, upserted).
    LabelAssignmentId,
    "label_file"
);

impl LabelAssignmentId {
    pub fn for_file(file: &FileId) -> LabelAssignmentId {
        LabelAssignmentId(format!("label_file::{}", file.key()))
    }
}

doc_id!(
    /// `label_rule::{uuid v4}`.
    LabelRuleId,
    "label_rule"
);

impl LabelRuleId {
    pub fn generate() -> LabelRuleId {
        LabelRuleId(format!("label_rule::{}", uuid::Uuid::new_v4().as_simple()))
    }
}

doc_id!(
    /// `plugin::{node_id}::{plugin_name}` (deterministic: a plugin is configured per node).
    PluginId,
    "plugin"
);

impl PluginId {
    pub fn for_plugin(node: &NodeId, name: &PluginName) -> PluginId {
        PluginId(format!("plugin::{node}::{name}"))
    }
}

doc_id!(
    /// `annotation::{file key}::{plugin_name}` (deterministic: one per file and plugin).
    AnnotationId,
    "annotation"
);

impl AnnotationId {
    pub fn for_file(file: &FileId, plugin: &PluginName) -> AnnotationId {
        AnnotationId(format!("annotation::{}::{plugin}", file.key()))
    }
}

doc_id!(
    /// `notification::{source}::{condition_key}` (deterministic: a condition that recurs updates
    /// the same document instead of adding one).
    NotificationId,
    "notification"
);

impl NotificationId {
    /// `source` is `control_plane`, a node id, or `{node_id}:{plugin}`; `condition_key` names the
    /// condition (`inotify_limit`, `watch_path_inaccessible:/data`, ...). Characters outside the
    /// id alphabet (`/`, spaces) are percent-encoded so any condition key yields a valid id.
    pub fn for_condition(source: &str, condition_key: &str) -> NotificationId {
        NotificationId(format!("notification::{}::{}", encode_part(source), encode_part(condition_key)))
    }
}

/// Percent-encode the bytes that are not allowed in an id part (whitespace, `/`, `%`, non-ASCII),
/// and `::` separators by encoding `:` when doubled is avoided by encoding every `:`.
fn encode_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'/' && b != b'%' && b != b':' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// An inode number of the virtual filesystem: 0 invalid, 1 root, 2–999 reserved, 1000+ assigned
/// at random when a file or virtual directory is first seen, and stored in its document.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Inode(pub u64);

impl Inode {
    pub const ROOT: Inode = Inode(1);
    pub const FIRST_ASSIGNED: u64 = 1000;

    /// A random inode in `1000..2^63` (the top bit stays clear so the value fits an `i64` column).
    pub fn generate() -> Inode {
        Inode(rand::random_range(Self::FIRST_ASSIGNED..(1u64 << 63)))
    }

    pub fn is_assigned(self) -> bool {
        self.0 >= Self::FIRST_ASSIGNED
    }
}

impl fmt::Display for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A document's revision: a per-document version number, incremented by its writer on every
/// change. `Rev(0)` means "no document yet".
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Rev(pub u64);

impl Rev {
    pub const NONE: Rev = Rev(0);
    pub fn next(self) -> Rev {
        Rev(self.0 + 1)
    }
}

impl fmt::Display for Rev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A position in a store's changes feed. Every write gets the next sequence number.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let f = FileId::generate();
        assert_eq!(f.as_str().parse::<FileId>().unwrap(), f);
        let n = NodeId::generate();
        assert_eq!(n.as_str().parse::<NodeId>().unwrap(), n);
        let k = AccessKeyId::generate();
        assert_eq!(k.as_str().parse::<AccessKeyId>().unwrap(), k);
        assert!(Inode::generate().is_assigned());
    }

    #[test]
    fn file_ids_are_time_ordered() {
        let ids: Vec<FileId> = (0..1000).map(|_| FileId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "UUID v7 ids must sort in creation order");
    }

    #[test]
    fn deterministic_ids() {
        let file: FileId = "file::0192abc".parse().unwrap();
        let node: NodeId = "node-1".parse().unwrap_or_else(|_| "laptop".parse().unwrap());
        assert_eq!(LabelAssignmentId::for_file(&file).as_str(), "label_file::0192abc");
        let plugin: PluginName = "summarizer".parse().unwrap();
        assert_eq!(AnnotationId::for_file(&file, &plugin).as_str(), "annotation::0192abc::summarizer");
        assert_eq!(PluginId::for_plugin(&node, &plugin).as_str(), format!("plugin::{node}::summarizer"));
        assert_eq!(
            NotificationId::for_condition("laptop", "watch_path_inaccessible:/data/x y").as_str(),
            "notification::laptop::watch_path_inaccessible%3A%2Fdata%2Fx%20y"
        );
        // Same inputs, same id: that is what deduplicates recurring notifications.
        assert_eq!(NotificationId::for_condition("a", "b"), NotificationId::for_condition("a", "b"));
    }

    #[test]
    fn bad_ids_are_rejected_with_a_reason() {
        assert!("dir::x".parse::<FileId>().is_err());
        assert!("file::".parse::<FileId>().is_err());
        assert!("file::a b".parse::<FileId>().is_err());
        assert!("Node_1".parse::<NodeId>().is_err());
        assert!("-ab".parse::<NodeId>().is_err());
        assert!("noprefix".parse::<DocId>().is_err());
        let e = "x".parse::<NodeId>().unwrap_err();
        assert!(e.to_string().contains("node id"));
    }
}
