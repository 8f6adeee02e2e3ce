//! Phonebook feeds served by `ucm serve` to real HTTP clients: basic auth, a token in the
//! path and network allow-lists (refusals counted in /metrics), ETag and 304, gzip, a run
//! that changes the table changes the ETag and one that changes nothing keeps it, Cisco
//! paging walked to the end through its Next URLs, and no live status in any feed. Both
//! backends.

mod common;

use std::io::Read as _;

use common::service::{exchange_bytes, http, pipeline, run_demo, serve_with};
use common::{Workspace, repo};

const BEARER: &str = "Bearer static-token";
const TOKEN: &str = "0123456789abcdef0123";

const FEEDS: &str = r#"
[[phonebooks]]
pipeline = "demo"
format = "yealink"
numbers = ["work", "mobile", "home"]
username = "phone"
password = "s3cret:phone"

[[phonebooks]]
pipeline = "demo"
format = "vcard"
token = "0123456789abcdef0123"

[[phonebooks]]
pipeline = "demo"
format = "cisco"
name_style = "last_first"
sort = "first_name"
allow = ["127.0.0.0/8"]

[[phonebooks]]
pipeline = "demo"
format = "csv"
allow = ["10.9.0.0/16"]
"#;

fn get(base: &str, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    exchange_bytes(
        base,
        format!(
            "GET {path} HTTP/1.1\r\nHost: phones.example\r\nConnection: close\r\n{headers}\r\n"
        )
        .as_bytes(),
    )
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `Authorization: Basic` for user and password.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {encoded}\r\n")
}

/// The names of a Yealink feed, read with quick-xml.
fn yealink_names(xml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut names, mut in_name, mut name) = (Vec::new(), false, String::new());
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"Name" => in_name = true,
            quick_xml::events::Event::End(e) if e.name().as_ref() == b"Name" => {
                in_name = false;
                names.push(std::mem::take(&mut name));
            }
            quick_xml::events::Event::Text(t) if in_name => name.push_str(&t.decode().unwrap()),
            quick_xml::events::Event::GeneralRef(r) if in_name => {
                name.push(common::predefined_entity(&r.decode().unwrap()))
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    names
}

#[test]
fn phones_get_their_feeds_with_access_checked_etags_gzip_and_paging() {
    let ws = Workspace::new("");
    std::fs::copy(repo("samples/external-contacts.xml"), ws.path("source.xml")).unwrap();
    pipeline(
        &ws,
        "demo",
        &ws.path("source.xml").display().to_string(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", FEEDS);
    run_demo(&s.base);
    // A live status that no feed may show.
    let (status, body) = http(
        "PUT",
        &format!("{}/api/contacts/dir:1/status", s.base),
        &[
            ("Authorization", BEARER),
            ("Content-Type", "application/json"),
        ],
        r#"{"registered": true, "call_state": "busy", "presence": "dnd", "note": "SECRET-NOTE"}"#,
    );
    assert_eq!(
        status,
        200,
        "{body}\n{}",
        std::fs::read_to_string(ws.path("service.toml")).unwrap()
    );

    // Basic auth: none or wrong is 401 with a challenge and nothing else.
    let (status, head, body) = get(&s.base, "/phonebook/demo/yealink", "");
    assert_eq!(status, 401);
    assert!(
        header(&head, "www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(&s.base, "/phonebook/demo/yealink", &basic("phone", "wrong"));
    assert_eq!(status, 401);
    let auth = basic("phone", "s3cret:phone");
    let (status, head, body) = get(&s.base, "/phonebook/demo/yealink", &auth);
    assert_eq!(status, 200, "{head}");
    let xml = String::from_utf8(body).unwrap();
    let names = yealink_names(&xml);
    assert!(
        names.contains(&"Hugo Wouters & Zonen".to_owned()),
        "{names:?}"
    );
    // Sorted by last name; Inès has no number: left out.
    assert_eq!(
        names.first().map(String::as_str),
        Some("Greet Claes"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("Inès")), "{names:?}");
    assert!(
        !xml.contains("SECRET-NOTE") && !xml.contains("dnd"),
        "{xml}"
    );
    assert!(
        header(&head, "content-type")
            .unwrap()
            .starts_with("text/xml")
    );

    // ETag and 304; gzip when asked.
    let etag = header(&head, "etag").expect("an ETag").to_owned();
    let (status, _, body) = get(
        &s.base,
        "/phonebook/demo/yealink",
        &format!("{auth}If-None-Match: {etag}\r\n"),
    );
    assert_eq!(status, 304);
    assert!(body.is_empty());
    let (status, head, zipped) = get(
        &s.base,
        "/phonebook/demo/yealink",
        &format!("{auth}Accept-Encoding: gzip\r\n"),
    );
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, xml);

    // A run that changes nothing keeps the ETag; one that changes the table changes it.
    let unchanged = run_demo(&s.base);
    assert_eq!(unchanged["inserted"], 0, "{unchanged}");
    let (_, head, _) = get(&s.base, "/phonebook/demo/yealink", &auth);
    assert_eq!(header(&head, "etag"), Some(etag.as_str()));
    let sample = std::fs::read_to_string(repo("samples/external-contacts.xml")).unwrap();
    ws.write(
        "source.xml",
        sample.replace(
            "</contacts>",
            "<contact><e_mail>new@ext.example</e_mail><first_name>Nieuw</first_name>\
             <extension>999</extension></contact></contacts>",
        ),
    );
    let changed = run_demo(&s.base);
    assert_eq!(changed["inserted"], 1, "{changed}");
    let (_, head, body) = get(&s.base, "/phonebook/demo/yealink", &auth);
    assert_ne!(header(&head, "etag"), Some(etag.as_str()));
    assert!(yealink_names(&String::from_utf8(body).unwrap()).contains(&"Nieuw".to_owned()));

    // A token in the path: vCard 4.0.
    let (status, _, _) = get(&s.base, "/phonebook/demo/vcard", "");
    assert_eq!(status, 401);
    let (status, _, _) = get(&s.base, "/phonebook/demo/vcard/not-the-token-at-all", "");
    assert_eq!(status, 401);
    let (status, head, body) = get(&s.base, &format!("/phonebook/demo/vcard/{TOKEN}"), "");
    assert_eq!(status, 200, "{head}");
    let cards = vcard4::parse(String::from_utf8(body).unwrap()).unwrap();
    assert!(cards.iter().any(|c| c.formatted_name[0].value == "Nieuw"));

    // A network not allowed: 403.
    let (status, _, body) = get(&s.base, "/phonebook/demo/csv", "");
    assert_eq!(status, 403);
    assert!(body.is_empty());
    let (status, _, _) = get(&s.base, "/phonebook/demo/snom", "");
    assert_eq!(status, 404, "no such feed");

    // Cisco: walk the pages through their Next URLs.
    // Sorted by first name, written "Last, First".
    let (_, _, first_page) = get(&s.base, "/phonebook/demo/cisco", "");
    let first_page = String::from_utf8(first_page).unwrap();
    assert!(
        first_page.contains("<DirectoryEntry><Name>Peeters, Anna"),
        "{first_page}"
    );
    let mut path = "/phonebook/demo/cisco".to_owned();
    let mut lines = 0;
    let mut pages = 0;
    loop {
        let (status, _, body) = get(&s.base, &path, "");
        assert_eq!(status, 200);
        let page = String::from_utf8(body).unwrap();
        lines += page.matches("<DirectoryEntry>").count();
        pages += 1;
        let Some(next) = page.split("<SoftKeyItem><Name>Next</Name><URL>").nth(1) else {
            break;
        };
        let url = next.split("</URL>").next().unwrap().replace("&amp;", "&");
        path = url
            .strip_prefix("http://phones.example")
            .expect("an absolute URL")
            .to_owned();
        assert!(pages < 10, "paging never ends");
    }
    assert!(lines >= 5, "{lines} lines over {pages} pages");
    // The search the input object sends: names containing `q`, in any case (accents too).
    for (q, want) in [
        ("PEETERS", "Peeters, Anna"),
        ("CHLO%C3%89", "Maes, Chlo\u{e9}"),
    ] {
        let (status, _, body) = get(&s.base, &format!("/phonebook/demo/cisco?q={q}"), "");
        assert_eq!(status, 200);
        let page = String::from_utf8(body).unwrap();
        let names: Vec<&str> = page
            .split("<DirectoryEntry><Name>")
            .skip(1)
            .map(|e| e.split("</Name>").next().unwrap())
            .collect();
        assert!(
            !names.is_empty() && names.iter().all(|n| n.starts_with(want)),
            "{q}: {page}"
        );
    }
    let (status, _, body) = get(&s.base, "/phonebook/demo/cisco/search", "");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("<CiscoIPPhoneInput>")
    );

    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    assert!(
        metrics.contains("reason=\"phonebook_unauthorized\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("reason=\"phonebook_network\""),
        "{metrics}"
    );
}

/// Hardening 3: two pipelines whose last changing runs had the same number gave the same
/// ETag, so a phone polling one feed got 304 for a directory it never had.
#[test]
fn an_etag_of_one_pipelines_feed_never_validates_another_pipelines_feed() {
    let ws = Workspace::new("");
    std::fs::copy(repo("samples/external-contacts.xml"), ws.path("source.xml")).unwrap();
    let source = ws.path("source.xml").display().to_string();
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    pipeline(&ws, "other", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let feeds = format!(
        "[[phonebooks]]\npipeline = \"demo\"\nformat = \"vcard\"\ntoken = \"{TOKEN}\"\n\
         [[phonebooks]]\npipeline = \"other\"\nformat = \"vcard\"\ntoken = \"{TOKEN}\"\n"
    );
    let s = serve_with(&ws, &["demo", "other"], 1, "127.0.0.1:0", &feeds);
    run_demo(&s.base);
    let (status, head, _) = get(&s.base, &format!("/phonebook/demo/vcard/{TOKEN}"), "");
    assert_eq!(status, 200, "{head}");
    let demo_tag = header(&head, "etag").unwrap().to_owned();
    // The same feed polled again: 304.
    let (status, _, _) = get(
        &s.base,
        &format!("/phonebook/demo/vcard/{TOKEN}"),
        &format!("If-None-Match: {demo_tag}\r\n"),
    );
    assert_eq!(status, 304);
    // The other pipeline's feed, polled with demo's ETag: its own directory, 200.
    let (status, head, _) = get(
        &s.base,
        &format!("/phonebook/other/vcard/{TOKEN}"),
        &format!("If-None-Match: {demo_tag}\r\n"),
    );
    assert_eq!(status, 200, "{head}");
    assert_ne!(header(&head, "etag").unwrap(), demo_tag);
}

#[test]
fn a_feed_anyone_could_read_is_refused_at_start_with_what_to_set() {
    let ws = Workspace::new("");
    pipeline(
        &ws,
        "demo",
        &common::service::samples(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    ws.write(
        "service.toml",
        "listen = \"127.0.0.1:0\"\npipelines = [\"demo.toml\"]\n[[phonebooks]]\npipeline = \"demo\"\nformat = \"yealink\"\n",
    );
    let out = std::process::Command::new(common::BIN)
        .current_dir(ws.dir.path())
        .args(["serve", "--service", "service.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[[phonebooks]] demo/yealink: a feed needs basic auth"),
        "{stderr}"
    );
}

/// A phone that stops reading holds a database connection while its feed is written: the
/// feeds streamed at once are bounded (503 with Retry-After beyond), and a feed whose client
/// reads nothing for `body_idle_timeout_secs` is cut, which frees its place.
#[test]
fn a_phone_that_stops_reading_holds_its_place_only_until_the_idle_timeout() {
    let ws = Workspace::new("");
    let source = common::service::generated(&ws, 60_000);
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let feeds = "[limits]\nmax_phonebook_streams = 1\nbody_idle_timeout_secs = 2\n\
                 [[phonebooks]]\npipeline = \"demo\"\nformat = \"yealink\"\nallow = [\"127.0.0.0/8\"]\n";
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", feeds);
    run_demo(&s.base);
    // A client that asks for the feed (about 9 MB) and never reads it.
    use std::io::Write as _;
    let mut stalled = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    stalled
        .write_all(b"GET /phonebook/demo/yealink HTTP/1.1\r\nHost: ucm\r\n\r\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (status, head, _) = get(&s.base, "/phonebook/demo/yealink", "");
    assert_eq!(status, 503, "{head}");
    assert_eq!(header(&head, "retry-after"), Some("5"));
    // After the idle timeout the stalled feed is cut and its place free again.
    let free = common::service::eventually(15, "the stalled feed to be cut", || {
        let (status, _, body) = get(&s.base, "/phonebook/demo/yealink", "");
        (status == 200).then_some(body.len())
    });
    assert!(free > 1_000_000, "{free} bytes");
    s.log_with(&["a phonebook feed ended early", "read nothing for 2 s"]);
    drop(stalled);
    let metrics = http("GET", &format!("{}/metrics", s.base), &[], "").1;
    assert!(metrics.contains("reason=\"phonebook_busy\""), "{metrics}");
}

/// Hardening 3: a phone reading a large feed at 150 kB/s for 12 s was cut with "read nothing
/// for 3 s": the service pulls the next chunk only when the socket takes more, which the
/// kernel allows in bursts seconds apart. Idle means no progress: a client that took bytes
/// within the window (as the socket's send queue shows) is not idle, however slow.
#[test]
fn a_phone_reading_a_large_feed_slowly_but_steadily_is_not_cut() {
    let ws = Workspace::new("");
    let source = common::service::generated(&ws, 60_000);
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let feeds = "[limits]\nbody_idle_timeout_secs = 3\n\
                 [[phonebooks]]\npipeline = \"demo\"\nformat = \"yealink\"\nallow = [\"127.0.0.0/8\"]\n";
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", feeds);
    run_demo(&s.base);
    use std::io::{Read as _, Write as _};
    let mut phone = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    phone
        .write_all(
            b"GET /phonebook/demo/yealink HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    // 15 kB every 100 ms for 12 s, then the rest as fast as it comes.
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 15_000];
    let slow_until = std::time::Instant::now() + std::time::Duration::from_secs(12);
    while std::time::Instant::now() < slow_until {
        let n = phone.read(&mut buffer).unwrap();
        assert!(n > 0, "the feed ended after {} bytes", answer.len());
        answer.extend_from_slice(&buffer[..n]);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(answer.len() > 1_000_000, "{} bytes in 12 s", answer.len());
    phone.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.trim_end().ends_with("0") && text.contains("</YealinkIPPhoneDirectory>"),
        "the feed was cut after {} bytes",
        answer.len()
    );
    let log = s.log.lock().unwrap().clone();
    assert!(!log.contains("a phonebook feed ended early"), "{log}");
}

/// Hardening 3: two phones searching the Cisco feed kept every other phone out (20 of 20 got
/// 503): each search read the whole table while holding one of the feed places. A search now
/// reads the name and number indexes in the contact search's lane and holds no feed place;
/// a page of the whole feed still reads the table, in a feed place.
#[test]
fn a_cisco_search_is_answered_from_the_indexes_without_a_feed_place() {
    let ws = Workspace::new("");
    let source = common::service::generated(&ws, 60_000);
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let feeds = "[limits]\nmax_phonebook_streams = 1\n\
                 [[phonebooks]]\npipeline = \"demo\"\nformat = \"yealink\"\nallow = [\"127.0.0.0/8\"]\n\
                 [[phonebooks]]\npipeline = \"demo\"\nformat = \"cisco\"\nallow = [\"127.0.0.0/8\"]\n";
    let s = serve_with(&ws, &["demo"], 1, "127.0.0.1:0", feeds);
    run_demo(&s.base);
    // A phone holds the only feed place (it asks for the feed and does not read it).
    use std::io::Write as _;
    let mut holding = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    holding
        .write_all(b"GET /phonebook/demo/yealink HTTP/1.1\r\nHost: ucm\r\n\r\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (status, _, _) = get(&s.base, "/phonebook/demo/cisco", "");
    assert_eq!(status, 503, "a page of the whole feed needs a feed place");
    // Searches are answered meanwhile: names (any case) and numbers, paged.
    for q in ["PEETERS", "jan", "%2B32%20475"] {
        let (status, _, body) = get(&s.base, &format!("/phonebook/demo/cisco?q={q}"), "");
        assert_eq!(status, 200, "{q}");
        let page = String::from_utf8(body).unwrap();
        assert_eq!(page.matches("<DirectoryEntry>").count(), 32, "{q}: {page}");
        assert!(page.contains("<Name>Next</Name>"), "{q}: {page}");
    }
    let (_, _, body) = get(&s.base, "/phonebook/demo/cisco?q=peeters&page=2", "");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<Prompt>Page 2 of "), "{page}");
    assert!(
        page.to_lowercase().matches("peeters").count() >= 32,
        "{page}"
    );
    drop(holding);
}
