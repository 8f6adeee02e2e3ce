//! Load on a running `ucm serve`: CLIENTS concurrent clients search contacts as a person types
//! (prefixes of one to four letters of common names, numbers) for SECONDS seconds, while one
//! more client reads `/api/pipelines` and `/health` ten times a second to see whether other
//! endpoints are affected. Prints each endpoint's request count, errors, p50, p99 and max.
//!
//! Run by `benches/search.sh`, which builds the directory and starts the service:
//!   cargo bench --bench search_load -- URL TOKEN [CLIENTS] [SECONDS]
//! Every request goes to URL (a loopback address); the loops stop by themselves.

use std::time::{Duration, Instant};

/// What people type into a directory search: name prefixes, e-mail starts, number starts.
const QUERIES: [&str; 24] = [
    "a", "an", "ann", "ma", "mar", "mart", "j", "je", "jea", "pe", "pee", "peet", "de", "dev",
    "van", "van d", "w", "wi", "wil", "s", "sm", "04", "047", "0475",
];

struct Latencies {
    name: &'static str,
    micros: Vec<u64>,
    errors: u64,
}

impl Latencies {
    fn new(name: &'static str) -> Latencies {
        Latencies {
            name,
            micros: Vec::new(),
            errors: 0,
        }
    }

    fn print(mut self, seconds: f64) {
        self.micros.sort_unstable();
        let at = |q: f64| {
            self.micros
                .get(((self.micros.len() as f64 * q) as usize).min(self.micros.len().max(1) - 1))
                .map_or(0.0, |&m| m as f64 / 1000.0)
        };
        println!(
            "  {:<16} {:>8} requests  {:>8.0}/s  errors {:>4}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
            self.name,
            self.micros.len(),
            self.micros.len() as f64 / seconds,
            self.errors,
            at(0.50),
            at(0.99),
            self.micros.last().map_or(0.0, |&m| m as f64 / 1000.0),
        );
    }
}

async fn client(
    http: reqwest::Client,
    urls: Vec<String>,
    token: String,
    until: Instant,
    pause: Duration,
    name: &'static str,
) -> Latencies {
    let mut seen = Latencies::new(name);
    let mut turn = fastrand::usize(..urls.len());
    while Instant::now() < until {
        turn = (turn + 1) % urls.len();
        let start = Instant::now();
        let answer = http.get(&urls[turn]).bearer_auth(&token).send().await;
        let ok = match answer {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        seen.micros.push(start.elapsed().as_micros() as u64);
        seen.errors += u64::from(!ok);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    seen
}

fn main() {
    // `cargo bench` passes --bench; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [url, token, rest @ ..] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench search_load -- URL TOKEN [CLIENTS] [SECONDS]");
        std::process::exit(2);
    };
    let clients: usize = rest.first().map_or(50, |c| c.parse().expect("CLIENTS"));
    let seconds: u64 = rest.get(1).map_or(20, |s| s.parse().expect("SECONDS"));
    let base = url.trim_end_matches('/').to_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients + 2)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let searches: Vec<String> = QUERIES
            .iter()
            .map(|q| {
                reqwest::Url::parse_with_params(
                    &format!("{base}/api/contacts"),
                    &[("q", *q), ("limit", "20")],
                )
                .unwrap()
                .to_string()
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            tasks.push(tokio::spawn(client(
                http.clone(),
                searches.clone(),
                token.clone(),
                until,
                Duration::ZERO,
                "search",
            )));
        }
        let others = [
            (format!("{base}/api/pipelines"), "/api/pipelines"),
            (format!("{base}/health"), "/health"),
        ];
        for (url, name) in others {
            tasks.push(tokio::spawn(client(
                http.clone(),
                vec![url],
                token.clone(),
                until,
                Duration::from_millis(100),
                name,
            )));
        }
        let mut search = Latencies::new("search");
        let mut rest = Vec::new();
        for task in tasks {
            let seen = task.await.unwrap();
            if seen.name == "search" {
                search.micros.extend(seen.micros);
                search.errors += seen.errors;
            } else {
                rest.push(seen);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!("== {clients} clients searching for {seconds} s ({base})");
        search.print(elapsed);
        for seen in rest {
            seen.print(elapsed);
        }
    });
}
