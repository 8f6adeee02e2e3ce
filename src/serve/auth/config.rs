//! `[auth]` of the service config: who may log in and which static token the API accepts;
//! each secret inline, from an environment variable or from a file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::secrets::Password;

/// Credentials for the write endpoints: a user name and password for `POST /api/login`,
/// and/or a static bearer token. Each secret inline, from an environment variable (`*_env`)
/// or from a file (`*_file`). Without any, the write endpoints refuse every request.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The password as an Argon2 hash (PHC string, `ucm hash-password`), instead of in clear.
    pub password_hash: Option<String>,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// How long a login token stays valid.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
}

/// The secrets, read.
#[derive(Clone, Default)]
pub struct ResolvedAuth {
    pub login: Option<(String, Password)>,
    pub token: Option<String>,
    pub session_minutes: u64,
}

impl std::fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResolvedAuth(login: {}, token: {})",
            self.login.is_some(),
            self.token.is_some()
        )
    }
}

fn default_session_minutes() -> u64 {
    60
}

impl ServiceAuth {
    pub fn resolve(&self) -> Result<ResolvedAuth, String> {
        let password = crate::config::read_password(
            "[auth]",
            &self.password,
            &self.password_env,
            &self.password_file,
            &self.password_hash,
        )?;
        let token = crate::config::read_secret(
            "[auth]",
            "token",
            &self.token,
            &self.token_env,
            &self.token_file,
        )?;
        let login = match (&self.username, password) {
            (Some(user), Some(password)) => Some((user.clone(), password)),
            (None, None) => None,
            _ => return Err("[auth] needs both username and a password (password, password_env, password_file or password_hash)".into()),
        };
        Ok(ResolvedAuth {
            login,
            token,
            session_minutes: self.session_minutes,
        })
    }
}
