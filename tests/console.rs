//! The console in a real browser (Chromium through WebDriver): log in, see a plan a guard
//! refused, open its diff, approve it and see the directory change and the run recorded;
//! discard another; upload a sample and get its plan; a contact's provenance; logged out,
//! none of it is visible, and forged form posts are refused. Screenshots of each screen go
//! to `target/test-artifacts/console-*.png` (the README shows them).

mod common;

use common::browser::{browser, chromedriver, path, screenshot, text};
use common::console_forms::{csrf_token, follow, post_form, session_cookie, upload};
use common::service::{PASSWORD, get_auth, http, pipeline, serve};
use common::{Workspace, repo};
use fantoccini::{Client, Locator};

const BEARER: &str = "Bearer static-token";

/// The samples with Hugo (external only) and his duplicate left out and Inès's last name changed to markup.
fn reduced_sample() -> String {
    let full = std::fs::read_to_string(repo("samples/external-contacts.xml")).unwrap();
    let start = full
        .find("  <!-- External only: no directory entry")
        .unwrap();
    let end = full.find("  <!-- External only, with non-ASCII").unwrap();
    let mut reduced = full[..start].to_owned() + &full[end..];
    // And his duplicate, which would otherwise take his place.
    let start = reduced.find("  <!-- Rejected: the same key").unwrap();
    let end = reduced
        .find("  <!-- Rejected: directory entries 5 and 6")
        .unwrap();
    reduced.replace_range(start..end, "");
    reduced = reduced.replace(
        "<last_name>Dubois</last_name>",
        "<last_name>&lt;script&gt;alert(1)&lt;/script&gt;</last_name>",
    );
    reduced
}

async fn log_in(client: &Client, base: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    let form = client.form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("username", "admin").await.unwrap();
    form.set_by_name("password", PASSWORD).await.unwrap();
    form.submit().await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("form.logout"))
        .await
        .unwrap();
    assert_eq!(path(client).await, "/");
}

/// Clicks `css` and waits until the browser has loaded the page it leads to (a form's
/// answer arrives after the click returns).
async fn click(client: &Client, css: &str) {
    client
        .execute("window.ucmOldPage = true;", vec![])
        .await
        .unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let loaded = client
            .execute(
                "return window.ucmOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .unwrap_or_default();
        if loaded == serde_json::Value::Bool(true) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "clicking {css} led nowhere"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits until a started run's page (it reloads itself while the run goes on) has led to
/// what the run made, or shows why it failed.
async fn until_the_run_ended(client: &Client) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while path(client).await.contains("/started/")
        && html(client).await.contains("http-equiv=\"refresh\"")
    {
        if std::time::Instant::now() > deadline {
            panic!("the run page never led on: {}", html(client).await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client
        .wait()
        .for_element(Locator::Css("main h1"))
        .await
        .unwrap();
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn html(client: &Client) -> String {
    client.source().await.unwrap()
}

fn plan_status(base: &str, id: i64) -> String {
    let (status, plan) = get_auth(&format!("{base}/api/pipelines/demo/plans/{id}"), BEARER);
    assert_eq!(status, 200, "{plan}");
    plan["plan"]["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_reviews_approves_discards_and_uploads_in_a_real_browser() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let ws = Workspace::new("");
    std::fs::copy(repo("samples/external-contacts.xml"), ws.path("source.xml")).unwrap();
    let source = ws.path("source.xml").display().to_string();
    pipeline(&ws, "demo", &source, "0 0 1 1 ?", "0 0 1 1 ?");
    let config = std::fs::read_to_string(ws.path("demo.toml")).unwrap();
    ws.write(
        "demo.toml",
        config.replace("[merge]\n", "[merge]\nmax_delete_ratio = 0.2\n"),
    );
    let s = serve(&ws, &["demo"], 1);
    let base = s.base.clone();
    let run = |expected: u16| {
        let (status, body) = http(
            "POST",
            &format!("{base}/api/pipelines/demo/run"),
            &[("Authorization", BEARER)],
            "",
        );
        assert_eq!(status, expected, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let first = run(200);
    let first_run = first["run_id"].as_i64().unwrap();
    // Hugo leaves the source: 1 of 2 external contacts deleted, over max_delete_ratio.
    ws.write("source.xml", reduced_sample());
    let refused = run(422);
    assert_eq!(refused["status"], "refused", "{refused}");
    let refused_plan = refused["plan_id"].as_i64().expect("the refused run's plan");

    let client = browser(&driver).await;

    // Logged out: the overview shows health only; every other page asks for a login.
    client.goto(&format!("{base}/")).await.unwrap();
    let page = html(&client).await;
    assert!(
        page.contains("health:") && page.contains("<h2>demo</h2>"),
        "{page}"
    );
    for hidden in [
        "contacts by origin",
        "awaiting approval",
        "runs-chart",
        "Peeters",
    ] {
        assert!(
            !page.contains(hidden),
            "logged out, the overview shows {hidden}: {page}"
        );
    }
    screenshot(&client, "console-logged-out").await;
    for private in [
        "/plans".to_owned(),
        format!("/plans/demo/{refused_plan}"),
        "/runs".to_owned(),
        "/contacts?q=anna".to_owned(),
        "/contact?id=dir%3A1".to_owned(),
    ] {
        client.goto(&format!("{base}{private}")).await.unwrap();
        assert_eq!(path(&client).await, "/login", "{private} without a login");
        assert!(!html(&client).await.contains("Peeters"));
    }
    // A form posted without a session does nothing.
    let (status, _) = http(
        "POST",
        &format!("{base}/plans/demo/{refused_plan}/approve"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "csrf=guess",
    );
    assert_eq!(status, 403);
    assert_eq!(plan_status(&base, refused_plan), "awaiting_approval");

    // Log in: the overview names the plan awaiting approval.
    log_in(&client, &base).await;
    let overview = html(&client).await;
    for seen in [
        "contacts by origin",
        "staged source",
        "last success",
        "1 plan awaiting approval",
        "id=\"runs-chart-demo\"",
        "class=\"bar failed\"",
        "on day 1 of the month, in January",
    ] {
        assert!(
            overview.contains(seen),
            "{seen} not on the overview:\n{overview}"
        );
    }
    screenshot(&client, "console-overview").await;

    // The first run's page: its rejections with their lines; a first load keeps no list.
    client
        .goto(&format!("{base}/runs/demo/{first_run}"))
        .await
        .unwrap();
    let rejections = text(&client, "ul.rejections").await;
    assert!(
        rejections.contains("ambiguous key \"shared@example.com\""),
        "{rejections}"
    );
    assert!(text(&client, "p.empty").await.contains("first load"));
    client.goto(&format!("{base}/")).await.unwrap();

    // The plan's diff: Hugo deleted, Inès's last name shown as text, not run as a script.
    click(&client, ".awaiting a").await;
    assert_eq!(path(&client).await, "/plans");
    screenshot(&client, "console-plans").await;
    click(&client, &format!("a[href='/plans/demo/{refused_plan}']")).await;
    let diff = html(&client).await;
    assert!(diff.contains("hugo.wouters@partner.example"), "{diff}");
    assert!(
        diff.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{diff}"
    );
    assert_eq!(count(&client, "table.change.delete").await, 1);
    assert_eq!(count(&client, "table.change.update").await, 1);
    screenshot(&client, "console-plan").await;
    // The filter: only updates of last_name.
    let filter = client.form(Locator::Css("form.filter")).await.unwrap();
    filter.set_by_name("action", "update").await.unwrap();
    click(&client, "form.filter button").await;
    assert!(path(&client).await.contains("action=update"));
    assert!(count(&client, "table.change.delete").await == 0);
    assert_eq!(count(&client, "table.change.update").await, 1);

    // A forged form (the same page, its CSRF token removed) is refused; nothing changes.
    client
        .goto(&format!("{base}/plans/demo/{refused_plan}"))
        .await
        .unwrap();
    client
        .execute(
            "document.querySelector(\"form[action$='/discard'] input[name=csrf]\").remove();",
            vec![],
        )
        .await
        .unwrap();
    click(&client, "button.discard").await;
    assert!(text(&client, "h1").await.contains("Form refused"));
    assert_eq!(plan_status(&base, refused_plan), "awaiting_approval");

    // Approve: the run that applied it, and the directory changed.
    client
        .goto(&format!("{base}/plans/demo/{refused_plan}"))
        .await
        .unwrap();
    click(&client, "button.approve").await;
    until_the_run_ended(&client).await;
    let run_page = path(&client).await;
    assert!(run_page.starts_with("/runs/demo/"), "{run_page}");
    assert!(text(&client, "h1").await.starts_with("Run #"));
    assert_eq!(text(&client, "table.summary .status").await, "succeeded");
    assert!(html(&client).await.contains("hugo.wouters@partner.example"));
    screenshot(&client, "console-run").await;
    assert_eq!(plan_status(&base, refused_plan), "applied");
    let run_id: i64 = run_page.rsplit('/').next().unwrap().parse().unwrap();
    let (_, recorded) = get_auth(&format!("{base}/api/runs/{run_id}"), BEARER);
    assert_eq!(recorded["command"], "apply", "{recorded}");
    assert_eq!(recorded["deleted"], 1, "{recorded}");
    client
        .goto(&format!("{base}/contacts?q=hugo"))
        .await
        .unwrap();
    assert!(html(&client).await.contains("No contact matches."));
    client.goto(&format!("{base}/runs")).await.unwrap();
    assert!(
        html(&client)
            .await
            .contains(&format!("href=\"/runs/demo/{run_id}\""))
    );

    // Dry run now (Hugo is back in the source), then discard its plan.
    std::fs::copy(repo("samples/external-contacts.xml"), ws.path("source.xml")).unwrap();
    client.goto(&format!("{base}/plans")).await.unwrap();
    click(&client, "form.inline button").await;
    until_the_run_ended(&client).await;
    let dry_plan = path(&client).await;
    assert!(dry_plan.starts_with("/plans/demo/"), "{dry_plan}");
    assert_eq!(count(&client, "table.change.insert").await, 1);
    click(&client, "button.discard").await;
    assert_eq!(text(&client, "table.summary .status").await, "discarded");
    let dry_id: i64 = dry_plan.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(plan_status(&base, dry_id), "discarded");
    client
        .goto(&format!("{base}/contacts?q=hugo"))
        .await
        .unwrap();
    assert!(
        html(&client).await.contains("No contact matches."),
        "discarded: nothing landed"
    );

    // Upload a sample: validated and stored as a plan.
    client.goto(&format!("{base}/plans")).await.unwrap();
    client
        .find(Locator::Css("form.upload input[type=file]"))
        .await
        .unwrap()
        .send_keys(&repo("samples/external-contacts.xml").display().to_string())
        .await
        .unwrap();
    screenshot(&client, "console-upload").await;
    click(&client, "form.upload button").await;
    until_the_run_ended(&client).await;
    let uploaded = path(&client).await;
    assert!(uploaded.starts_with("/plans/demo/"), "{uploaded}");
    let page = html(&client).await;
    assert!(page.contains("upload-"), "{page}");
    assert!(page.contains("+1 ~1 −0"), "{page}");
    // An invalid sample gets the validator's error, and no plan.
    ws.write(
        "broken.xml",
        "<contacts><contact><e_mail>x@y</e_mail></contact>",
    );
    client.goto(&format!("{base}/plans")).await.unwrap();
    client
        .find(Locator::Css("form.upload input[type=file]"))
        .await
        .unwrap()
        .send_keys(&ws.path("broken.xml").display().to_string())
        .await
        .unwrap();
    click(&client, "form.upload button").await;
    until_the_run_ended(&client).await;
    assert!(text(&client, "h1").await.contains("Dry run failed"));
    let problem = text(&client, "p.problem").await;
    assert!(
        problem.contains("upload-") && problem.contains(":1:"),
        "{problem}"
    );

    // A run that lands keeps its change list: Hugo back, Inès's name restored (the old value
    // shown as text).
    let again = run(200);
    let again_run = again["run_id"].as_i64().unwrap();
    client
        .goto(&format!("{base}/runs/demo/{again_run}"))
        .await
        .unwrap();
    assert_eq!(count(&client, "table.change.insert").await, 1);
    assert_eq!(count(&client, "table.change.update").await, 1);
    assert_eq!(
        text(&client, "table.change.update td.old").await,
        "<script>alert(1)</script>"
    );
    screenshot(&client, "console-run-changes").await;

    // A contact's provenance: Anna's home number came from the source (the directory has
    // none), her first name from the directory (priority 0 everywhere: the directory wins).
    client.goto(&format!("{base}/contacts")).await.unwrap();
    let search = client.form(Locator::Css("form.search")).await.unwrap();
    search.set_by_name("q", "anna").await.unwrap();
    click(&client, "form.search button").await;
    click(&client, "table.contacts a").await;
    let contact = html(&client).await;
    assert!(path(&client).await.starts_with("/contact?id="));
    for (field, side) in [("home_number", "external"), ("first_name", "directory")] {
        let row = client
            .find(Locator::XPath(&format!(
                "//table[contains(@class,'provenance')]//tr[td[1]='{field}']/td[3]"
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(row, side, "{field}: {contact}");
    }
    assert!(contact.contains("run #"), "{contact}");
    screenshot(&client, "console-contact").await;

    // Log out: the pages ask for a login again.
    click(&client, "form.logout button").await;
    client.goto(&format!("{base}/plans")).await.unwrap();
    assert_eq!(path(&client).await, "/login");
    client.close().await.unwrap();
}

#[test]
fn a_sample_over_max_upload_bytes_or_without_its_token_is_refused_and_stores_nothing() {
    let ws = Workspace::new("");
    pipeline(
        &ws,
        "demo",
        &common::service::samples(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    let s = common::service::serve_with(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        "[limits]\nmax_upload_bytes = 4096\n",
    );
    let plans = || get_auth(&format!("{}/api/plans", s.base), BEARER).1;
    let cookie = session_cookie(&s.base);
    let csrf = csrf_token(&s.base, &cookie);
    let uploads = ws.path("ucm-data/demo");

    let mut big = b"<contacts>".to_vec();
    while big.len() < 10_000 {
        big.extend_from_slice(b"<contact><e_mail>x@example.com</e_mail></contact>");
    }
    big.extend_from_slice(b"</contacts>");
    let (status, _, page) = upload(&s.base, &cookie, &csrf, &big);
    assert_eq!(status, 413, "{page}");
    assert!(page.contains("larger than 4096 bytes"), "{page}");

    let small = std::fs::read(repo("samples/external-contacts.xml")).unwrap();
    let (status, _, page) = upload(&s.base, &cookie, "forged", &small);
    assert_eq!(status, 403, "{page}");
    assert_eq!(plans(), serde_json::json!([]), "nothing was stored");

    let answer = upload(&s.base, &cookie, &csrf, &small);
    assert_eq!(answer.0, 303, "{}", answer.1);
    assert!(
        answer.1.contains("location: /runs/demo/started/"),
        "{}",
        answer.1
    );
    let (status, _, page, at) = follow(&s.base, &cookie, answer);
    assert_eq!(status, 200, "{page}");
    assert!(at.starts_with("/plans/demo/"), "{at}");
    assert_eq!(plans().as_array().unwrap().len(), 1);
    // The uploaded files are gone once their dry runs ended.
    let left: Vec<_> = walk(&uploads)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("upload-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Hardening 3: an upload whose body paused past `body_idle_timeout_secs` was answered 500,
/// where the README says 408.
#[test]
fn an_upload_that_pauses_past_the_body_idle_timeout_is_answered_408_and_stores_nothing() {
    let ws = Workspace::new("");
    pipeline(
        &ws,
        "demo",
        &common::service::samples(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    let s = common::service::serve_with(
        &ws,
        &["demo"],
        1,
        "127.0.0.1:0",
        "[limits]\nbody_idle_timeout_secs = 1\n",
    );
    let cookie = session_cookie(&s.base);
    let csrf = csrf_token(&s.base, &cookie);
    let boundary = "ucm-test-boundary";
    let head_of_body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"sample\"; filename=\"s.xml\"\r\n\
         Content-Type: application/xml\r\n\r\n<contacts>"
    );
    let address = s.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        stream,
        "POST /pipelines/demo/upload HTTP/1.1\r\nHost: ucm\r\nConnection: close\r\n\
         Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: 100000\r\n\r\n{head_of_body}"
    )
    .unwrap();
    // Then nothing, for longer than the body idle timeout.
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_idle_timeout_secs"), "{answer}");
    assert_eq!(
        get_auth(&format!("{}/api/plans", s.base), BEARER).1,
        serde_json::json!([]),
        "nothing was stored"
    );
}

/// Hardening 3: a sample dry run that a guard would refuse was answered 422 "stored no plan";
/// its plan is stored and shown for approval, as a refused run's is.
#[test]
fn a_sample_a_guard_would_refuse_leads_to_its_plan_awaiting_approval() {
    let ws = Workspace::new("");
    pipeline(
        &ws,
        "demo",
        &common::service::samples(),
        "0 0 1 1 ?",
        "0 0 1 1 ?",
    );
    let s = common::service::serve_with(&ws, &["demo"], 1, "127.0.0.1:0", "");
    common::service::run_demo(&s.base);
    let cookie = session_cookie(&s.base);
    let csrf = csrf_token(&s.base, &cookie);
    // One contact: the dry run would delete every other external contact.
    let sample = b"<contacts><contact><e_mail>solo@example.com</e_mail></contact></contacts>";
    let answer = upload(&s.base, &cookie, &csrf, sample);
    assert_eq!(answer.0, 303, "{}\n{}", answer.1, answer.2);
    let (status, _, page, location) = follow(&s.base, &cookie, answer);
    assert!(location.starts_with("/plans/demo/"), "{location}");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("max_delete_ratio"),
        "the guard's reason: {page}"
    );
    assert!(page.contains("Approve"), "{page}");
    let plans = get_auth(&format!("{}/api/plans", s.base), BEARER).1;
    assert_eq!(plans[0]["status"], "awaiting_approval", "{plans}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// Issue 25: "Test the source" shows the source's first contacts as the pipeline maps them,
/// each value with the column it comes from and what no field reads; nothing is staged or
/// written.
#[test]
fn test_the_source_shows_the_first_contacts_as_mapped_and_lands_nothing() {
    let ws = Workspace::new("");
    ws.write(
        "outlook.csv",
        "First Name,Middle Name,Last Name,E-mail Address\r\nAnna,,Peeters,anna@example.com\r\n",
    );
    let config = std::fs::read_to_string(ws.path("pipeline.toml")).unwrap();
    let database = config[config.find("[database]").unwrap()..].to_owned();
    ws.write(
        "demo.toml",
        format!(
            "name = \"demo\"\n[source]\nkind = \"csv\"\npreset = \"outlook-csv\"\nurl = \"{}\"\n\
             schedule = \"0 0 1 1 ?\"\n[merge]\nschedule = \"0 0 1 1 ?\"\n{database}",
            ws.path("outlook.csv").display()
        ),
    );
    let s = serve(&ws, &["demo"], 1);
    let cookie = session_cookie(&s.base);
    let csrf = csrf_token(&s.base, &cookie);
    let (status, _, page) = post_form(&s.base, &cookie, &csrf, "/pipelines/demo/test-source");
    assert_eq!(status, 200, "{page}");
    for shown in [
        "Contact 1 (line 2)",
        "Peeters",
        "column &quot;Last Name&quot;",
        "&quot;Middle Name&quot;",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    let (_, runs) = get_auth(&format!("{}/api/runs", s.base), BEARER);
    assert_eq!(runs, serde_json::json!([]), "nothing was recorded");
    let (_, _, overview) = common::console_forms::get_page(&s.base, &cookie, "/");
    assert!(overview.contains("Test the source"), "{overview}");
}
