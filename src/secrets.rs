//! Secrets compared and made safely: constant-time equality for passwords, tokens and
//! signatures (`subtle`), and random tokens and nonces from the operating system's generator
//! (`getrandom`). Used by the service's logins and sessions, the phone endpoints, the LDAP
//! directory and the cluster.

use subtle::ConstantTimeEq;

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
