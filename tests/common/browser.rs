//! A real Chromium driven through WebDriver (Debian's `chromium` and `chromium-driver`, the
//! fantoccini client): a chromedriver process on a free loopback port, one headless browser
//! session, and screenshots saved under `target/test-artifacts/`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::repo;

/// A chromedriver process; killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or None when it or Chromium is missing (the test is then skipped
/// with a note, unless `UCM_REQUIRE_BROWSER` is set, as `.ci/run` does).
pub fn chromedriver() -> Option<Driver> {
    let chromium = super::chromium()?;
    let _ = chromium;
    let installed = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("UCM_REQUIRE_BROWSER").is_err(),
            "chromedriver is missing (apt-get install chromium-driver); .ci/run installs it"
        );
        eprintln!("skipped: chromedriver is not installed (apt-get install chromium-driver)");
        return None;
    }
    // A free port: bound, read, released (chromedriver cannot pick one itself).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(driver)
}

/// A new headless browser session on `driver`.
pub async fn browser(driver: &Driver) -> Client {
    let binary = super::chromium().expect("chromium is installed");
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": which(binary),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

fn which(binary: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Saves a screenshot of the page as `target/test-artifacts/NAME.png`.
pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    let dir = repo("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The text of the first element matching `css`.
pub async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => {
            let page = client.source().await.unwrap_or_default();
            panic!("no {css} ({e}) on {:?}:\n{page}", path(client).await)
        }
    }
}

/// The page's URL path (with its query).
pub async fn path(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}
