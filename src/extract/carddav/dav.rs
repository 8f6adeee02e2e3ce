//! The WebDAV and CardDAV requests a CardDAV source makes (RFC 4918 PROPFIND, RFC 6578
//! sync-collection, RFC 6352 addressbook-multiget), sent with reqwest, and their multistatus
//! answers read with quick-xml. Elements are matched by local name (servers choose their own
//! prefixes); text is read with its entity and character references resolved.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::extract::download::{Auth, FetchErrorKind, transport_error};

/// One `<response>` of a multistatus: its href, its status when the response has one (a
/// deleted member in a sync-collection answer: 404), and its properties found with 200.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DavResponse {
    pub href: String,
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub address_data: Option<String>,
    pub sync_token: Option<String>,
    pub ctag: Option<String>,
    /// Whether its resourcetype names an address book.
    pub address_book: bool,
}

/// A multistatus answer: its responses and, for sync-collection, the new sync-token.
#[derive(Debug, Default)]
pub struct Multistatus {
    pub responses: Vec<DavResponse>,
    pub sync_token: Option<String>,
}

/// A request to the collection, answered by a multistatus.
pub struct DavRequest<'a> {
    pub client: &'a reqwest::Client,
    pub auth: Option<&'a Auth>,
    /// The largest answer read, in bytes.
    pub max_bytes: u64,
}

/// Why a request failed: its kind, or a sync-token the server no longer knows.
pub enum DavFailure {
    Fetch(FetchErrorKind),
    /// The server refused the sync-token (403/409 with valid-sync-token, or 412): read all.
    TokenRefused,
}

impl From<FetchErrorKind> for DavFailure {
    fn from(kind: FetchErrorKind) -> DavFailure {
        DavFailure::Fetch(kind)
    }
}

impl DavRequest<'_> {
    /// Sends `method` to `url` with `depth` and the XML `body`; the multistatus answer.
    pub async fn send(
        &self,
        method: &str,
        url: &reqwest::Url,
        depth: &str,
        body: String,
    ) -> Result<Multistatus, DavFailure> {
        let mut answer = Vec::new();
        self.request(method, url, depth, body, &mut answer).await?;
        let mut out = Multistatus::default();
        out.sync_token = for_each_response(&answer, |r| {
            out.responses.push(r);
            Ok(())
        })
        .map_err(|why| unreadable(url, why))?;
        Ok(out)
    }

    /// As [`DavRequest::send`], the answer written to a temporary file in `dir` as it
    /// arrives (a whole address book's cards), for [`for_each_response`].
    pub async fn send_to_file(
        &self,
        method: &str,
        url: &reqwest::Url,
        depth: &str,
        body: String,
        dir: &std::path::Path,
    ) -> Result<tempfile::NamedTempFile, DavFailure> {
        let io = |e: std::io::Error| {
            DavFailure::Fetch(FetchErrorKind::Io(format!(
                "cannot write the answer of {url}: {e}"
            )))
        };
        let file = tempfile::Builder::new()
            .prefix(".carddav-")
            .tempfile_in(dir)
            .map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        self.request(method, url, depth, body, &mut out).await?;
        out.into_inner().map_err(|e| io(e.into_error()))
    }

    /// Sends the request and writes the answer's body to `out`; Err for a status other than
    /// 2xx (with what to do), a body over `max_bytes`, or a broken connection.
    async fn request(
        &self,
        method: &str,
        url: &reqwest::Url,
        depth: &str,
        body: String,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), DavFailure> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a WebDAV method");
        let mut request = self
            .client
            .request(method, url.clone())
            .header("Depth", depth)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/xml; charset=utf-8",
            )
            .body(body);
        request = match self.auth {
            Some(Auth::Basic { username, password }) => {
                request.basic_auth(username, Some(password))
            }
            Some(Auth::Bearer { token }) => request.bearer_auth(token),
            None => request,
        };
        let shown = url.as_str();
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(&e, 0, shown))?;
        let status = response.status();
        let mut received = 0u64;
        let mut error_body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&e, received, shown))?
        {
            received += chunk.len() as u64;
            if received > self.max_bytes {
                return Err(FetchErrorKind::TooLarge {
                    max: self.max_bytes,
                }
                .into());
            }
            if !status.is_success() {
                // Enough of an error's body to find the precondition it names.
                if error_body.len() < 64 * 1024 {
                    error_body.extend_from_slice(&chunk);
                }
                continue;
            }
            out.write_all(&chunk).map_err(|e| {
                DavFailure::Fetch(FetchErrorKind::Io(format!(
                    "cannot keep the answer of {shown}: {e}"
                )))
            })?;
        }
        if status.is_success() {
            return Ok(());
        }
        let token_refused = status.as_u16() == 412
            || (matches!(status.as_u16(), 403 | 409) && contains(&error_body, b"valid-sync-token"));
        if token_refused {
            return Err(DavFailure::TokenRefused);
        }
        let hint = match status.as_u16() {
            401 | 403 => ": check the credentials in [source.auth]",
            404 => ": check source.url (the address book collection's URL)",
            405 | 501 => ": the server does not speak CardDAV at this URL",
            _ => "",
        };
        Err(FetchErrorKind::Status {
            status: status.to_string(),
            hint,
        }
        .into())
    }
}

/// A multistatus ucm could not read, as the fetch's error.
pub fn unreadable(url: &reqwest::Url, why: String) -> DavFailure {
    DavFailure::Fetch(FetchErrorKind::Refused(format!(
        "{url} answered with a multistatus ucm cannot read: {why}"
    )))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// XML-escapes `text` for a request body.
fn escaped(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// PROPFIND of the collection itself: its resourcetype and sync-token.
pub fn collection_properties() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
     <d:propfind xmlns:d=\"DAV:\"><d:prop><d:resourcetype/><d:sync-token/></d:prop></d:propfind>"
        .into()
}

/// PROPFIND of the collection's CTag (a server without sync-tokens). Asked apart: a server
/// computes each over the whole book.
pub fn collection_ctag() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
     <d:propfind xmlns:d=\"DAV:\" xmlns:cs=\"http://calendarserver.org/ns/\">\
     <d:prop><cs:getctag/></d:prop></d:propfind>"
        .into()
}

/// PROPFIND of the members' ETags (for a server without sync-collection).
pub fn member_etags() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
     <d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/></d:prop></d:propfind>"
        .into()
}

/// sync-collection since `token` (empty: everything), asking for ETags only.
pub fn sync_collection(token: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <d:sync-collection xmlns:d=\"DAV:\"><d:sync-token>{}</d:sync-token>\
         <d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>",
        escaped(token)
    )
}

/// addressbook-query of every card: their hrefs, ETags and cards (a full read).
pub fn every_card() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
     <c:addressbook-query xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:carddav\">\
     <d:prop><d:getetag/><c:address-data/></d:prop></c:addressbook-query>"
        .into()
}

/// addressbook-multiget of `hrefs`: their ETags and cards.
pub fn multiget<'h>(hrefs: impl Iterator<Item = &'h str>) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <c:addressbook-multiget xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:carddav\">\
         <d:prop><d:getetag/><c:address-data/></d:prop>",
    );
    for href in hrefs {
        body.push_str("<d:href>");
        body.push_str(&escaped(href));
        body.push_str("</d:href>");
    }
    body.push_str("</c:addressbook-multiget>");
    body
}

/// The status code of a `HTTP/1.1 200 OK` line.
fn status_code(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where the parser is inside a `<response>`.
#[derive(Default)]
struct Current {
    response: DavResponse,
    /// The properties of the propstat being read, kept if its status is 2xx.
    props: DavResponse,
    propstat_status: Option<u16>,
}

/// Reads a multistatus body, handing each `<response>` to `each` as it ends; returns the
/// answer's sync-token (a sync-collection's).
pub fn for_each_response(
    body: &[u8],
    mut each: impl FnMut(DavResponse) -> Result<(), String>,
) -> Result<Option<String>, String> {
    let mut reader = Reader::from_reader(body);
    let mut sync_token = None;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut current: Option<Current> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_vec();
                if name == b"response" {
                    current = Some(Current::default());
                }
                if name == b"addressbook"
                    && path.last().is_some_and(|p| p == b"resourcetype")
                    && let Some(c) = current.as_mut()
                {
                    c.props.address_book = true;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(empty) => {
                let name = empty.local_name();
                if name.as_ref() == b"addressbook"
                    && path.last().is_some_and(|p| p == b"resourcetype")
                    && let Some(c) = current.as_mut()
                {
                    c.props.address_book = true;
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content().map_err(|e| e.to_string())?),
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t.into_inner())),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("an unknown entity &{name};"))?;
                    text.push_str(resolved);
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(Vec::as_slice);
                let ended = end_element(&name, parent, &mut text, &mut current, &mut sync_token);
                if let Some(response) = ended {
                    each(response)?;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(sync_token)
}

/// What the end of element `name` (inside `parent`) completes: a response, when it is one.
fn end_element(
    name: &[u8],
    parent: Option<&[u8]>,
    text: &mut String,
    current: &mut Option<Current>,
    sync_token: &mut Option<String>,
) -> Option<DavResponse> {
    let value = std::mem::take(text);
    if name == b"sync-token" && parent == Some(b"multistatus".as_slice()) {
        *sync_token = Some(value.trim().to_owned());
        return None;
    }
    let c = current.as_mut()?;
    match (name, parent) {
        (b"href", Some(b"response")) => c.response.href = value.trim().to_owned(),
        (b"status", Some(b"response")) => c.response.status = status_code(&value),
        (b"status", Some(b"propstat")) => c.propstat_status = status_code(&value),
        (b"getetag", Some(b"prop")) => c.props.etag = Some(value.trim().to_owned()),
        (b"address-data", Some(b"prop")) => c.props.address_data = Some(value),
        (b"sync-token", Some(b"prop")) => c.props.sync_token = Some(value.trim().to_owned()),
        (b"getctag", Some(b"prop")) => c.props.ctag = Some(value.trim().to_owned()),
        (b"propstat", _) => {
            let props = std::mem::take(&mut c.props);
            if c.propstat_status.is_none_or(|s| (200..300).contains(&s)) {
                let r = &mut c.response;
                r.etag = r.etag.take().or(props.etag);
                r.address_data = r.address_data.take().or(props.address_data);
                r.sync_token = r.sync_token.take().or(props.sync_token);
                r.ctag = r.ctag.take().or(props.ctag);
                r.address_book |= props.address_book;
            }
            c.propstat_status = None;
        }
        (b"response", _) => return current.take().map(|done| done.response),
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_multistatus(body: &[u8]) -> Result<Multistatus, String> {
        let mut out = Multistatus::default();
        out.sync_token = for_each_response(body, |r| {
            out.responses.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_sync_answer_gives_changed_and_deleted_members_and_the_new_token() {
        let body = br#"<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
 <response><href>/u/book/a.vcf</href>
  <propstat><prop><getetag>"e1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat>
 </response>
 <response><href>/u/book/b.vcf</href><status>HTTP/1.1 404 Not Found</status></response>
 <response><href>/u/book/c.vcf</href>
  <propstat><prop><getetag>"e3"</getetag><C:address-data>BEGIN:VCARD&#13;
FN:A &amp; B&#13;
END:VCARD&#13;
</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat>
 </response>
 <sync-token>http://radicale.org/ns/sync/abc</sync-token>
</multistatus>"#;
        let answer = parse_multistatus(body).unwrap();
        assert_eq!(
            answer.sync_token.as_deref(),
            Some("http://radicale.org/ns/sync/abc")
        );
        assert_eq!(answer.responses.len(), 3);
        assert_eq!(answer.responses[0].etag.as_deref(), Some("\"e1\""));
        assert_eq!(answer.responses[1].status, Some(404));
        assert_eq!(
            answer.responses[2].address_data.as_deref(),
            Some("BEGIN:VCARD\r\nFN:A & B\r\nEND:VCARD\r\n")
        );
    }

    #[test]
    fn the_collection_is_known_by_its_resourcetype_and_properties_not_found_are_left_out() {
        let body = br#"<d:multistatus xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/">
<d:response><d:href>/u/book/</d:href>
<d:propstat><d:prop><d:resourcetype><d:collection/><card:addressbook/></d:resourcetype>
<cs:getctag>"c1"</cs:getctag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
<d:propstat><d:prop><d:sync-token/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
</d:response></d:multistatus>"#;
        let answer = parse_multistatus(body).unwrap();
        let book = &answer.responses[0];
        assert!(book.address_book);
        assert_eq!(book.ctag.as_deref(), Some("\"c1\""));
        assert_eq!(book.sync_token, None);
    }
}
