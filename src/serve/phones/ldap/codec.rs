//! The wire: `ldap3_proto`'s codec behind a guard that refuses at once a stream that is not
//! LDAP or announces a message over `max_request_bytes`.

use ldap3_proto::LdapCodec;
use ldap3_proto::proto::LdapMsg;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

/// A connection's byte stream: TCP, or TLS over it.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(super) type Connection = Framed<Box<dyn Io>, GuardedCodec>;

/// `ldap3_proto`'s codec behind a look at each message's first bytes: an LDAP message is a
/// BER SEQUENCE (0x30) whose length comes next, so a stream that starts otherwise (an HTTP
/// request, noise) or announces more than `max_request_bytes` is refused at once, rather
/// than read until the buffer fills or the connection idles out.
pub(super) struct GuardedCodec {
    inner: LdapCodec,
    max_request_bytes: usize,
}

impl GuardedCodec {
    pub(super) fn new(max_request_bytes: usize) -> GuardedCodec {
        GuardedCodec {
            inner: LdapCodec::new(Some(max_request_bytes), None),
            max_request_bytes,
        }
    }
}

impl tokio_util::codec::Decoder for GuardedCodec {
    type Item = LdapMsg;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<LdapMsg>, std::io::Error> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if let Some(&first) = buf.first()
            && first != 0x30
        {
            return Err(invalid("not an LDAP message (no BER SEQUENCE)"));
        }
        if let Some(&length) = buf.get(1)
            && length & 0x80 != 0
        {
            let bytes = usize::from(length & 0x7f);
            if bytes == 0 || bytes > 4 {
                return Err(invalid(
                    "an LDAP message of indefinite or impossible length",
                ));
            }
            if let Some(digits) = buf.get(2..2 + bytes) {
                let declared = digits
                    .iter()
                    .fold(0usize, |n, b| (n << 8) | usize::from(*b));
                if declared > self.max_request_bytes {
                    return Err(invalid(&format!(
                        "an LDAP message of {declared} bytes, over max_request_bytes ({})",
                        self.max_request_bytes
                    )));
                }
            }
        }
        self.inner.decode(buf)
    }
}

impl tokio_util::codec::Encoder<LdapMsg> for GuardedCodec {
    type Error = std::io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut bytes::BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(msg, buf)
    }
}
