//! Agent-to-agent transfers (ARCHITECTURE §6.4, §10).
//!
//! - [`serve`]: the endpoint that streams this node's files to other agents with a transfer
//!   token, honouring `Range` and ending with a `Digest` trailer.
//! - [`range`]: the `Range` header as the endpoint reads it.
//!
//! Not built yet (issue 7): the agent's TLS listener and its advertisement in the node
//! document, and the requesting side (tier 4 through the cache).

pub mod range;
pub mod serve;

#[cfg(test)]
mod tests;
