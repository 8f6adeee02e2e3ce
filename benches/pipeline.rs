//! Criterion benchmarks of the pipeline's stages on inputs from ucm's own generator:
//! parse+validate throughput (bytes and contacts a second), the keyed merge, and a whole fresh
//! import into SQLite (parse, merge, compare and load).
//!
//! `cargo bench --bench pipeline`; `UCM_BENCH_CONTACTS` sets the input size (default 40,000:
//! large enough, 13 MiB, to be read in parallel chunks and by the fast path for plain records,
//! as large sources are).

use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ucm::extract::{Contract, ExternalContact};
use ucm::generate::{GenerateSpec, write_csv, write_xml};
use ucm::load::Store;
use ucm::pipeline::{NoProgress, RunRequest, execute};
use ucm::transform::{Directory, MergePolicy, Merger, directory::read_csv};

fn contacts() -> u64 {
    std::env::var("UCM_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

fn inputs(dir: &Path) -> GenerateSpec {
    let n = contacts();
    let spec = GenerateSpec {
        contacts: n,
        directory: n / 8,
        overlap: 0.3,
        seed: 7,
        realistic: false,
    };
    write_xml(&spec, &dir.join("contacts.xml")).unwrap();
    write_csv(&spec, &dir.join("directory.csv")).unwrap();
    spec
}

fn parse_all(contract: &Contract, path: &Path) -> Vec<ExternalContact> {
    let mut all = Vec::new();
    contract
        .read(path, 1, &|_| {}, |c| {
            all.push(c);
            Ok::<(), ()>(())
        })
        .unwrap();
    all
}

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let spec = inputs(dir.path());
    let xml = dir.path().join("contacts.xml");
    let bytes = std::fs::metadata(&xml).unwrap().len();
    let contract = Arc::new(Contract::builtin());

    let mut group = c.benchmark_group("parse_validate");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("bytes", |b| b.iter(|| contract.validate(&xml, 1).unwrap()));
    group.throughput(Throughput::Elements(spec.contacts));
    group.bench_function("contacts", |b| {
        b.iter(|| contract.validate(&xml, 1).unwrap())
    });
    group.finish();

    let policy = MergePolicy::default();
    let directory = Directory::new(
        read_csv(&dir.path().join("directory.csv")).unwrap(),
        &policy,
    );
    let parsed = parse_all(&contract, &xml);
    let mut group = c.benchmark_group("merge");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spec.contacts));
    group.bench_function("contacts", |b| {
        b.iter_batched(
            || parsed.clone(),
            |contacts| {
                let mut merger = Merger::new(&policy, &directory, Default::default());
                let external = contacts
                    .into_iter()
                    .filter_map(|c| merger.accept(c))
                    .count();
                external + merger.finish().0.count()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("fresh_import");
    group.sample_size(10);
    group.throughput(Throughput::Elements(spec.contacts));
    let mut round = 0;
    group.bench_function("contacts", |b| {
        b.iter_batched(
            || {
                round += 1;
                let url = format!(
                    "sqlite://{}",
                    dir.path().join(format!("bench-{round}.db")).display()
                );
                runtime.block_on(Store::open(&url)).unwrap()
            },
            |store| {
                let request = RunRequest {
                    pipeline: "bench".into(),
                    command: "import".into(),
                    source: xml.clone(),
                    policy: policy.clone(),
                    directory_csv: Some(dir.path().join("directory.csv")),
                    max_delete_ratio: 0.5,
                    plan_ttl_hours: 168,
                    // The defaults of [merge] run_changes_kept and run_changes_ttl_hours.
                    run_changes_kept: 100_000,
                    run_changes_ttl_hours: 24 * 90,
                    dry_run: false,
                    force: false,
                };
                let report = runtime.block_on(execute(
                    &store,
                    Arc::clone(&contract),
                    request,
                    Arc::new(NoProgress),
                ));
                assert!(report.status.is_success(), "{:?}", report.error);
                runtime.block_on(store.close());
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
