//! The active/active pair: status changes (and profile changes, when `profile_sync` is on)
//! made on one node reach its peers, and concurrent changes converge.
//!
//! - [`version`]: the hybrid logical clock every change carries;
//! - [`change`]: the change model, as the event stream and the peers see it;
//! - [`live_state`]: storing a change unless a newer version is stored;
//! - [`node`]: this node, its peers, and the checks of a peer's push;
//! - [`outbox`]: a local change written with its outbox row in one transaction, one pusher
//!   per peer, the anti-entropy pass;
//! - [`config`]: `[cluster]` of the service config.
//!
//! The receiving endpoint (`POST /api/cluster/changes`) is the service's (`serve::api::cluster`);
//! this room never imports the service.

pub mod change;
pub mod config;
pub mod live_state;
pub mod node;
pub mod outbox;
pub mod version;

pub use change::Change;
pub use config::ClusterConfig;
pub use node::{Cluster, PeerState, REFUSAL_REASONS};
pub use outbox::{anti_entropy_loop, push_loop, record_local};
pub use version::{Version, Versions};
