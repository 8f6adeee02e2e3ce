//! Who may use the service: `[auth]` (its config, [`config`]), logins and bearer tokens
//! ([`login`]). The console's browser sessions are in `console::session`; the phones' own
//! access rules in `phones::access`.

pub mod config;
pub mod login;

pub use config::{ResolvedAuth, ServiceAuth};
pub use login::{LOGIN_BODY_BYTES, LoginRefused, authorized, login, require_login, verify_login};
