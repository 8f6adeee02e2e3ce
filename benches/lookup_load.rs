//! Caller-ID lookups against a running `ucm serve` at a fixed rate, as a PBX makes them: RATE
//! requests a second for SECONDS seconds, each started on schedule whether or not the earlier
//! ones have been answered (an open loop: a slow answer cannot hide the ones queued behind
//! it). A latency is measured from the request's start; how late the generator started any
//! request against its schedule is printed too (the timer's resolution is 1 ms). Two seconds
//! at the same rate come first and are not counted (the service's pool and caches warm up,
//! as they are on a PBX's running service); the first answer's time is printed apart.
//! Numbers come from a file, one per line (known numbers in several spellings, and unknown
//! ones). Prints requests, answers found / not found, errors (anything else, or no answer,
//! by kind), p50, p99 and max.
//!
//! Run by `benches/lookup.sh`, which builds the table and starts the service:
//!   cargo bench --bench lookup_load -- URL NUMBERS_FILE [RATE] [SECONDS]
//! URL is the lookup URL without `?number=` (a loopback address).

use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes --bench; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [url, numbers, rest @ ..] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench lookup_load -- URL NUMBERS_FILE [RATE] [SECONDS]");
        std::process::exit(2);
    };
    let rate: u64 = rest.first().map_or(500, |r| r.parse().expect("RATE"));
    let seconds: u64 = rest.get(1).map_or(20, |s| s.parse().expect("SECONDS"));
    let numbers: Vec<String> = std::fs::read_to_string(numbers)
        .expect("NUMBERS_FILE")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(!numbers.is_empty(), "NUMBERS_FILE holds no number");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = url.clone();
    runtime.block_on(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        let first = Instant::now();
        let _ = http
            .get(format!("{url}?number=1"))
            .send()
            .await
            .and_then(|r| r.error_for_status());
        println!("  first answer (cold) in {:.2} ms", first.elapsed().as_secs_f64() * 1000.0);
        let warmup = rate * 2;
        let total = rate * seconds;
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        let mut late = Duration::ZERO;
        for i in 0..warmup + total {
            let due = started + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            late = late.max(due.elapsed());
            let number = &numbers[i as usize % numbers.len()];
            let request = http.get(format!(
                "{url}?number={}",
                percent_encoding::utf8_percent_encode(number, percent_encoding::NON_ALPHANUMERIC)
            ));
            let task = tokio::spawn(async move {
                let start = Instant::now();
                let answer = request.send().await;
                let status = match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.bytes().await {
                            Ok(_) => status,
                            Err(_) => 0,
                        }
                    }
                    Err(_) => 0,
                };
                (start.elapsed(), status)
            });
            if i >= warmup {
                tasks.push(task);
            }
        }
        let mut latencies = Vec::with_capacity(tasks.len());
        let (mut found, mut unknown) = (0u64, 0u64);
        let mut errors: std::collections::BTreeMap<u16, u64> = Default::default();
        for task in tasks {
            let (latency, status) = task.await.unwrap();
            latencies.push(latency);
            match status {
                200 => found += 1,
                404 => unknown += 1,
                other => *errors.entry(other).or_default() += 1,
            }
        }
        let elapsed = started.elapsed().as_secs_f64() - 2.0;
        let error_count: u64 = errors.values().sum();
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
            latencies[i].as_secs_f64() * 1000.0
        };
        println!(
            "== {total} lookups at {rate}/s for {seconds} s ({:.0}/s achieved)",
            total as f64 / elapsed
        );
        println!(
            "  found {found}  unknown {unknown}  errors {error_count}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            at(0.50),
            at(0.99),
            latencies.last().unwrap().as_secs_f64() * 1000.0
        );
        if error_count > 0 {
            println!("  errors by status (0: no answer): {errors:?}");
        }
        println!(
            "  generator: latest start {:.2} ms after its schedule",
            late.as_secs_f64() * 1000.0
        );
        let p99 = at(0.99);
        println!(
            "  target: p99 under 5 ms and no error: {}",
            if p99 < 5.0 && error_count == 0 {
                "ok"
            } else {
                "MISSED"
            }
        );
    });
}
