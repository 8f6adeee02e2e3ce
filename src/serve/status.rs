//! How pipelines and runs are shown: whole with a login; without one, statuses only (no
//! paths, database URLs, sources or error texts). Shared by the JSON API and the console.

use serde_json::{Value, json};

use super::state::{Pipeline, Service};
use crate::load::{Store, runs};

/// The distinct databases of the loaded pipelines.
pub fn stores(service: &Service) -> Vec<&Store> {
    let mut stores: Vec<&Store> = Vec::new();
    for p in &service.pipelines {
        if let Ok(l) = &p.loaded
            && !stores.iter().any(|s| s.url() == l.store.url())
        {
            stores.push(&l.store);
        }
    }
    stores
}

/// The fields of a run report shown without a login: what ran, when, how it ended and the
/// counts; not its source, error text, rejections or changes.
const PUBLIC_REPORT_FIELDS: [&str; 14] = [
    "run_id",
    "pipeline",
    "command",
    "status",
    "dry_run",
    "started_at",
    "finished_at",
    "contacts_read",
    "rejected",
    "inserted",
    "updated",
    "deleted",
    "unchanged",
    "duration_ms",
];

/// A run report as shown: whole with a login, its public fields without.
pub fn shown_report(report: Value, full: bool) -> Value {
    if full {
        return report;
    }
    let Value::Object(fields) = report else {
        return Value::Null;
    };
    Value::Object(
        fields
            .into_iter()
            .filter(|(k, _)| PUBLIC_REPORT_FIELDS.contains(&k.as_str()))
            .collect(),
    )
}

/// One pipeline as `/api/pipelines` and the status page show it; `full` (a login) adds its
/// config path, database and errors.
pub async fn describe(service: &Service, p: &Pipeline, full: bool) -> Value {
    let Ok(l) = &p.loaded else {
        let mut value = json!({ "name": p.name, "loaded": false });
        if full {
            value["config"] = json!(p.path.display().to_string());
            value["error"] = json!(p.loaded.as_ref().err());
        }
        return value;
    };
    let schedules: Vec<Value> = l
        .schedules
        .iter()
        .map(|s| {
            let next = s
                .next
                .lock()
                .expect("no poisoning")
                .clone()
                .or_else(|| s.schedule.next_fire(service.clock.now()));
            json!({
                "stage": s.stage.as_str(),
                "cron": s.schedule.expr.as_str(),
                "explain": s.schedule.expr.explain(),
                "spread_offset_secs": s.schedule.offset.as_secs_f64(),
                "next_cron_time": next.as_ref().map(|f| f.cron_time.to_string()),
                "next_fire_at": next.as_ref().map(|f| f.at.to_string()),
                "next_fire_local": next.as_ref().map(|f| {
                    f.at.to_zoned(s.schedule.zone.clone())
                        .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                }),
            })
        })
        .collect();
    let last = runs::latest_of(&l.store, Some(&p.name), 1)
        .await
        .ok()
        .and_then(|mut r| r.pop());
    let mut value = json!({
        "name": p.name,
        "loaded": true,
        "time_zone": l.schedules.first().and_then(|s| s.schedule.zone.iana_name().map(str::to_owned)),
        "running": p.busy.try_lock().is_err(),
        "schedules": schedules,
        "last_run": last.map(|run| {
            if full {
                json!(run)
            } else {
                json!({
                    "id": run.id,
                    "command": run.command,
                    "status": run.status,
                    "started_at": run.started_at,
                    "duration_ms": run.duration_ms,
                })
            }
        }),
    });
    if full {
        value["config"] = json!(p.path.display().to_string());
        value["database"] = json!(crate::extract::fetch::mask_url(l.store.url()));
        value["error"] = Value::Null;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_without_a_login_keeps_only_its_public_fields() {
        let report = json!({
            "run_id": 3, "pipeline": "p", "status": "failed", "source": "http://u:pw@h/x.xml",
            "error": "cannot connect to db.internal", "changes": [{"key": "a@b"}], "inserted": 1,
        });
        let shown = shown_report(report.clone(), false);
        assert_eq!(
            shown,
            json!({"run_id": 3, "pipeline": "p", "status": "failed", "inserted": 1})
        );
        assert_eq!(shown_report(report.clone(), true), report);
    }
}
