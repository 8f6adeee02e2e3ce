//! The change model: one status or profile change of a contact with its version, as the
//! event stream sends it and nodes send each other.

use serde::{Deserialize, Serialize};

use super::version::Version;
use crate::directory::Status;

/// One change, as `/api/events` sends it and nodes send each other: a status or a profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub contact: String,
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl Change {
    /// `status` or `profile`.
    pub fn kind(&self) -> &'static str {
        if self.status.is_some() {
            "status"
        } else {
            "profile"
        }
    }
}
