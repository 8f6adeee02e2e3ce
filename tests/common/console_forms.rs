//! Helpers of the console's tests over plain HTTP: a login's session cookie, a form's CSRF
//! token, a sample upload, and following a started run's page to what it made.

use super::service::{PASSWORD, exchange};

/// Logs in through the console's form; the session cookie (`ucm_session=...`).
pub fn session_cookie(base: &str) -> String {
    let form = format!(
        "username=admin&password={}",
        percent_encoding::utf8_percent_encode(PASSWORD, percent_encoding::NON_ALPHANUMERIC)
    );
    let (status, head, _) = exchange(
        base,
        format!(
            "POST /login HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token of the session's forms.
pub fn csrf_token(base: &str, cookie: &str) -> String {
    let (status, _, page) = exchange(
        base,
        format!(
            "GET /plans HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status, 200, "{page}");
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a form") + marker.len();
    page[at..at + 64].to_owned()
}

/// Posts `sample` to the upload form with CSRF token `csrf`.
pub fn upload(base: &str, cookie: &str, csrf: &str, sample: &[u8]) -> (u16, String, String) {
    let boundary = "ucm-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"sample\"; filename=\"s.xml\"\r\n\
         Content-Type: application/xml\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(sample);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST /pipelines/demo/upload HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n\
         Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    exchange(base, &request)
}

/// A GET of `path` with the session `cookie`: status, head, body.
pub fn get_page(base: &str, cookie: &str, path: &str) -> (u16, String, String) {
    exchange(
        base,
        format!(
            "GET {path} HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        )
        .as_bytes(),
    )
}

/// A POST of a console form holding only the session's CSRF token `csrf` to `path`: status,
/// head, body.
pub fn post_form(base: &str, cookie: &str, csrf: &str, path: &str) -> (u16, String, String) {
    let form = format!("csrf={csrf}");
    exchange(
        base,
        format!(
            "POST {path} HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
}

/// The `location` of a redirect's head.
pub fn location(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("location: "))
        .map(|l| l.trim().to_owned())
}

/// Follows a form's answer (`status`, `head`, `page`) through the started run's page (which
/// reloads itself while the run goes on) to what the run made: the last answer and where it
/// was found.
pub fn follow(
    base: &str,
    cookie: &str,
    (mut status, mut head, mut page): (u16, String, String),
) -> (u16, String, String, String) {
    let mut at = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let next = match (status, location(&head)) {
            (303, Some(next)) => next,
            (200, _) if at.contains("/started/") && page.contains("http-equiv=\"refresh\"") => {
                std::thread::sleep(std::time::Duration::from_millis(200));
                at.clone()
            }
            _ => return (status, head, page, at),
        };
        assert!(
            std::time::Instant::now() < deadline,
            "the run never ended: {page}"
        );
        at = next;
        (status, head, page) = get_page(base, cookie, &at);
    }
}
