//! The schedules: each pipeline stage's cron fires in the pipeline's time zone, delayed by its
//! spread offset, each fire on a task of its own; fires missed while the service was down are
//! logged, not replayed.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::watch;

use super::state::{Pipeline, Service};
use crate::load::runs;

/// Fires one stage's schedule until `stop` says so. Computes each next fire from the clock,
/// so fires missed while the service was down are not replayed.
pub async fn schedule_loop(
    service: Arc<Service>,
    pipeline: Arc<Pipeline>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(loaded) = &pipeline.loaded else { return };
    let entry = &loaded.schedules[index];
    loop {
        let Some(fire) = entry.schedule.next_fire(service.clock.now()) else {
            tracing::warn!(pipeline = %pipeline.name, stage = entry.stage.as_str(), "the schedule has no further fire time");
            return;
        };
        tracing::info!(
            pipeline = %pipeline.name,
            stage = entry.stage.as_str(),
            cron = entry.schedule.expr.as_str(),
            cron_time = %fire.cron_time,
            spread_offset_ms = entry.schedule.offset.as_millis() as u64,
            fires_at = %fire.at,
            "next fire"
        );
        *entry.next.lock().expect("no poisoning") = Some(fire.clone());
        tokio::select! {
            _ = service.clock.sleep_until(fire.at) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        // Each fire runs on its own task, so the next one is computed (and, if the run is
        // still going then, recorded as skipped) on time.
        let (run_service, run_pipeline) = (Arc::clone(&service), Arc::clone(&pipeline));
        let stage = entry.stage;
        let handle = tokio::spawn(async move {
            run_service.fire(&run_pipeline, stage).await;
        });
        let mut in_flight = service.in_flight.lock().expect("no poisoning");
        in_flight.retain(|h| !h.is_finished());
        in_flight.push(handle);
    }
}

/// Logs the fires of each schedule that fell between the pipeline's last recorded run of
/// that stage and now: they are not replayed.
pub async fn log_missed(service: &Service) {
    let now = service.clock.now();
    for pipeline in &service.pipelines {
        let Ok(loaded) = &pipeline.loaded else {
            continue;
        };
        for entry in &loaded.schedules {
            let Ok(Some(last)) =
                runs::last_started(&loaded.store, &pipeline.name, entry.stage.as_str()).await
            else {
                continue;
            };
            let Ok(since) = last.parse::<Timestamp>() else {
                continue;
            };
            let mut missed = 0u32;
            let mut first = None;
            let mut at = since.to_zoned(entry.schedule.zone.clone());
            while let Some(next) = entry.schedule.expr.next_after(&at) {
                if next.timestamp() >= now || missed >= 10_000 {
                    break;
                }
                first.get_or_insert_with(|| next.clone());
                missed += 1;
                at = next;
            }
            if let Some(first) = first {
                tracing::warn!(
                    pipeline = %pipeline.name,
                    stage = entry.stage.as_str(),
                    missed,
                    first = %first,
                    "fires missed while the service was down; not replayed"
                );
            }
        }
    }
}
