//! Secrets compared and made safely: constant-time equality for passwords, tokens and
//! signatures (`subtle`), random tokens and nonces from the operating system's generator
//! (`getrandom`), configured passwords given in clear or as an Argon2 hash ([`Password`],
//! `argon2`), and secrets read from the config, the environment or a file
//! ([`read_secret`]). Used by the service's logins and sessions, the phone endpoints, the
//! LDAP directory, the cluster and the sources.

use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A configured password: in clear (`password`, `password_env`, `password_file`), or as an
/// Argon2 hash in PHC form (`password_hash = "$argon2id$v=19$..."`, made by
/// `ucm hash-password`).
pub enum Password {
    Clear(String),
    Hashed {
        phc: String,
        /// The SHA-256 of the last password that verified: phones and PBXes present the same
        /// one on every request, and an Argon2 verification costs tens of milliseconds.
        verified: Mutex<Option<[u8; 32]>>,
    },
}

impl Password {
    /// A hash from the config: a PHC string of Argon2 (argon2id, argon2i or argon2d).
    pub fn hashed(phc: &str) -> Result<Password, String> {
        let parsed = PasswordHash::new(phc)
            .map_err(|e| format!("is not a PHC string ({e}): make one with `ucm hash-password`"))?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(format!(
                "uses {}: only Argon2 hashes are accepted (make one with `ucm hash-password`)",
                parsed.algorithm
            ));
        }
        Ok(Password::Hashed {
            phc: phc.to_owned(),
            verified: Mutex::new(None),
        })
    }

    /// Whether `given` is this password, in time that does not tell how close it was.
    pub fn matches(&self, given: &str) -> bool {
        match self {
            Password::Clear(expected) => constant_time_eq(given.as_bytes(), expected.as_bytes()),
            Password::Hashed { phc, verified } => {
                let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
                let cached = *verified.lock().expect("no poisoning");
                if cached.is_some_and(|known| constant_time_eq(&known, &digest)) {
                    return true;
                }
                // Tens of milliseconds of CPU: not on a worker thread of the service's runtime.
                let right = crate::blocking::off_the_runtime(|| {
                    PasswordHash::new(phc).is_ok_and(|hash| {
                        Argon2::default()
                            .verify_password(given.as_bytes(), &hash)
                            .is_ok()
                    })
                });
                if right {
                    *verified.lock().expect("no poisoning") = Some(digest);
                }
                right
            }
        }
    }
}

impl Clone for Password {
    fn clone(&self) -> Password {
        match self {
            Password::Clear(p) => Password::Clear(p.clone()),
            Password::Hashed { phc, .. } => Password::Hashed {
                phc: phc.clone(),
                verified: Mutex::new(None),
            },
        }
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Password::Clear(_) => "Password(clear)",
            Password::Hashed { .. } => "Password(hashed)",
        })
    }
}

/// `password` as an Argon2id hash with a random salt, in PHC form (`ucm hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Equality in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `bytes` random bytes from the operating system's generator, as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// A secret given inline, read from an environment variable (`WHAT_env`) or from a file
/// (`WHAT_file`, without its final newline); at most one of the three.
pub fn read_secret(
    section: &str,
    what: &str,
    inline: &Option<String>,
    env: &Option<String>,
    file: &Option<std::path::PathBuf>,
) -> Result<Option<String>, String> {
    let given = [inline.is_some(), env.is_some(), file.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if given > 1 {
        return Err(format!(
            "{section} sets more than one of {what}, {what}_env, {what}_file"
        ));
    }
    if let Some(v) = inline {
        return Ok(Some(v.clone()));
    }
    if let Some(name) = env {
        return std::env::var(name).map(Some).map_err(|_| {
            format!("{section} {what}_env = \"{name}\" but that environment variable is not set")
        });
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{section} cannot read {what}_file {}: {e}", path.display()))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        return Ok(Some(text.strip_suffix('\r').unwrap_or(text).to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"p:a@s%s", b"p:a@s%s"));
        assert!(!constant_time_eq(b"p:a@s%s", b"p:a@s%t"));
        assert!(!constant_time_eq(b"short", b"shorter"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn a_hashed_password_matches_only_itself_and_a_bad_hash_is_refused() {
        let phc = hash_password("p:a@s%s&w\"o r\\d é").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let password = Password::hashed(&phc).unwrap();
        assert!(password.matches("p:a@s%s&w\"o r\\d é"));
        assert!(
            password.matches("p:a@s%s&w\"o r\\d é"),
            "again, from the cache"
        );
        assert!(!password.matches("p:a@s%s&w\"o r\\d"));
        assert!(!password.matches(""));
        assert!(Password::hashed("secret").is_err());
        assert!(Password::hashed("$6$salt$hash").is_err());
        assert!(Password::Clear("x".into()).matches("x"));
        assert!(!Password::Clear("x".into()).matches("y"));
    }

    #[test]
    fn random_tokens_are_hex_of_the_length_asked_and_differ() {
        let a = random_hex(32).unwrap();
        let b = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
