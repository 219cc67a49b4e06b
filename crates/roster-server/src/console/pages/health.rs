//! A tenant's health on its SCIM page: the chart of requests and failures per hour over the
//! last 7 days (an SVG rendered here, with a text alternative: a summary sentence and a table
//! per day), and, for operators, the webhook endpoints that carry the tenant's events with
//! their delivery state and a *Redeliver* button.
//!
//! The chart reads the hourly rollup (one statement over at most 168 rows of a small table),
//! whatever the length of the provisioning log.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::super::view::{fmt_ago, tenant_href, url_enc};
use super::super::{redirect, ConsoleError, Posted, Session};
use super::scim::thousands;
use crate::ops;
use crate::AppState;

/// How many days the chart shows.
pub const CHART_DAYS: i64 = 7;

// The SVG's coordinate system (it scales to the width of its box).
const BAR_W: i64 = 4;
const LEFT: i64 = 44;
const TOP: i64 = 8;
const PLOT_H: i64 = 150;
const HOURS: i64 = CHART_DAYS * 24;
/// The viewBox's width and height.
const WIDTH: i64 = LEFT + HOURS * BAR_W + 8;
const HEIGHT: i64 = TOP + PLOT_H + 28;

/// One hour's bars (heights in SVG units; a zero-height bar is not drawn).
pub struct Bar {
    /// Left edge.
    pub x: i64,
    /// Top of the requests bar.
    pub req_y: i64,
    /// Height of the requests bar.
    pub req_h: i64,
    /// Top of the failures bar.
    pub fail_y: i64,
    /// Height of the failures bar.
    pub fail_h: i64,
}

/// A day boundary on the time axis.
pub struct DayTick {
    /// Where the day starts.
    pub x: i64,
    /// Where its label goes (the middle of the day, or of what is shown of it).
    pub label_x: i64,
    /// `Mon 30`.
    pub label: String,
}

/// One row of the chart's text alternative.
pub struct DayRow {
    /// `Mon 30 Nov`.
    pub day: String,
    /// Requests that day (of the hours shown).
    pub requests: String,
    /// Failures that day.
    pub failures: String,
}

/// The 7-day chart of a tenant.
pub struct Chart {
    /// The viewBox's size.
    pub width: i64,
    /// The viewBox's height.
    pub height: i64,
    /// Left edge, top and bottom of the plot.
    pub left: i64,
    /// Top of the plot.
    pub top: i64,
    /// The baseline (y of 0).
    pub bottom: i64,
    /// Right edge of the plot.
    pub right: i64,
    /// The y of the half-way grid line.
    pub mid: i64,
    /// The scale's top value, and half of it, as labels.
    pub max_label: String,
    /// Half of the top value.
    pub mid_label: String,
    /// Where the labels of the time axis go.
    pub label_y: i64,
    /// Where the y labels end (right-aligned).
    pub ylabel_x: i64,
    /// The bars, one per hour.
    pub bars: Vec<Bar>,
    /// The day boundaries.
    pub days: Vec<DayTick>,
    /// "1,204 requests, 18 failed, in the last 7 days."
    pub summary: String,
    /// The busiest hour, in words, for the SVG's description.
    pub desc: String,
    /// The text alternative: one row per day.
    pub rows: Vec<DayRow>,
}

/// A "nice" top for the scale: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= max {
                return v.max(1);
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

fn height_of(v: u64, top: u64) -> i64 {
    if v == 0 || top == 0 {
        return 0;
    }
    // At least one unit, so that a single failure among thousands of requests is visible.
    let h = (u128::from(v) * u128::from(PLOT_H.unsigned_abs()) / u128::from(top)).max(1);
    i64::try_from(h).unwrap_or(PLOT_H)
}

fn day_label(t: OffsetDateTime) -> String {
    let w = t.weekday().to_string();
    format!("{} {}", w.get(..3).unwrap_or(&w), t.day())
}

fn day_long(t: OffsetDateTime) -> String {
    let month = t.month().to_string();
    format!("{} {}", day_label(t), month.get(..3).unwrap_or(&month))
}

impl Chart {
    /// The chart of `hours` (oldest first, one per hour, as [`roster_store::HealthStore::tenant_hourly`]
    /// answers for the last 7 days).
    #[must_use]
    pub fn of(hours: &[roster_store::HourCount]) -> Self {
        let requests: u64 = hours.iter().map(|h| h.requests).sum();
        let failures: u64 = hours.iter().map(|h| h.failures).sum();
        let max = hours.iter().map(|h| h.requests).max().unwrap_or(0);
        let top = nice_ceiling(max);
        let bottom = TOP + PLOT_H;
        let bars = hours
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let x = LEFT + i64::try_from(i).unwrap_or(0) * BAR_W;
                let req_h = height_of(h.requests, top);
                let fail_h = height_of(h.failures, top).min(req_h.max(1));
                Bar {
                    x,
                    req_y: bottom - req_h,
                    req_h,
                    fail_y: bottom - fail_h,
                    fail_h,
                }
            })
            .collect();
        // Day boundaries (UTC midnights) within the hours shown, plus the first hour.
        let mut days = Vec::new();
        let mut rows: Vec<DayRow> = Vec::new();
        let mut day_totals: Vec<(OffsetDateTime, u64, u64)> = Vec::new();
        for (i, h) in hours.iter().enumerate() {
            let x = LEFT + i64::try_from(i).unwrap_or(0) * BAR_W;
            if i == 0 || h.hour.hour() == 0 {
                days.push(DayTick {
                    x,
                    label_x: x,
                    label: day_label(h.hour),
                });
                day_totals.push((h.hour, 0, 0));
            }
            if let Some(last) = day_totals.last_mut() {
                last.1 += h.requests;
                last.2 += h.failures;
            }
        }
        // Each label in the middle of its day (or of what is shown of it).
        let ends: Vec<i64> = days
            .iter()
            .skip(1)
            .map(|d| d.x)
            .chain(std::iter::once(
                LEFT + HOURS.min(i64::try_from(hours.len()).unwrap_or(0)) * BAR_W,
            ))
            .collect();
        for (d, end) in days.iter_mut().zip(ends) {
            d.label_x = (d.x + end) / 2;
            // A partial day too narrow for its label keeps its line but not the words.
            if end - d.x < 10 * BAR_W {
                d.label.clear();
            }
        }
        for (day, r, f) in &day_totals {
            rows.push(DayRow {
                day: day_long(*day),
                requests: thousands(*r),
                failures: thousands(*f),
            });
        }
        let busiest = hours.iter().max_by_key(|h| h.requests);
        let desc = match busiest {
            Some(b) if b.requests > 0 => format!(
                "Bars per hour, UTC, oldest on the left; failures in red over requests. The \
                 busiest hour had {} requests ({} failed), on {} at {:02}:00.",
                thousands(b.requests),
                thousands(b.failures),
                day_long(b.hour),
                b.hour.hour()
            ),
            _ => "No requests in the last 7 days.".to_owned(),
        };
        Self {
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
            top: TOP,
            bottom,
            right: LEFT + HOURS * BAR_W,
            mid: TOP + PLOT_H / 2,
            max_label: thousands(top),
            mid_label: thousands(top / 2),
            label_y: bottom + 18,
            ylabel_x: LEFT - 6,
            bars,
            days,
            summary: format!(
                "{} request{}, {} failed, in the last 7 days.",
                thousands(requests),
                if requests == 1 { "" } else { "s" },
                thousands(failures)
            ),
            desc,
            rows,
        }
    }
}

/// A webhook endpoint as the tenant's SCIM page shows it.
pub struct EndpointRow {
    /// Where it delivers.
    pub url: String,
    /// `ok`, `failing`, `parked`, `paused`.
    pub status: &'static str,
    /// "3 minutes ago" or "never".
    pub last_success: String,
    /// Consecutive failed attempts.
    pub failures: i64,
    /// Events waiting.
    pub lag: String,
    /// The last error, when failing.
    pub last_error: String,
    /// Where its *Redeliver* form posts.
    pub redeliver_action: String,
    /// The operator's page of the endpoint.
    pub href: String,
}

/// The health part of the tenant's SCIM page.
pub struct HealthPanel {
    /// The 7-day chart.
    pub chart: Chart,
    /// The webhook endpoints that carry this tenant's events (operators only; empty for an
    /// IT admin's session).
    pub webhooks: Vec<EndpointRow>,
    /// Whether the webhook section is shown (operators).
    pub show_webhooks: bool,
}

/// Builds the health part of `tenant`'s page at `now`: two reads for the chart and, for an
/// operator, three for the webhooks.
///
/// # Errors
/// A storage failure.
pub async fn panel(
    state: &AppState,
    session: &Session,
    tenant: &str,
    now: OffsetDateTime,
) -> Result<HealthPanel, ConsoleError> {
    let until = roster_store::hour_of(now) + Duration::HOUR;
    let since = until - Duration::hours(HOURS);
    let hours = state.store.tenant_hourly(tenant, since, until).await?;
    let chart = Chart::of(&hours);
    let show_webhooks = session.is_operator();
    let webhooks = if show_webhooks {
        ops::webhooks::endpoints(state.store.as_ref(), Some(tenant))
            .await?
            .into_iter()
            .map(|e| EndpointRow {
                status: e.status(),
                last_success: e
                    .last_success()
                    .map_or_else(|| "never".to_owned(), |t| fmt_ago(t, now)),
                failures: e.consecutive_failures(),
                lag: thousands(e.lag()),
                last_error: e.last_error().unwrap_or_default().to_owned(),
                redeliver_action: format!(
                    "{}/webhooks/{}/redeliver",
                    tenant_href(tenant),
                    url_enc(&e.hook.id)
                ),
                href: format!("/console/webhooks/{}", url_enc(&e.hook.id)),
                url: e.hook.url,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(HealthPanel {
        chart,
        webhooks,
        show_webhooks,
    })
}

/// The *Redeliver* form.
#[derive(Debug, Deserialize)]
pub struct RedeliverForm {}

/// `POST /console/t/{tenant}/webhooks/{id}/redeliver` (operators): retries this tenant's
/// stream of the endpoint now (clears its wait and resumes a parked stream), then back to the
/// SCIM page's webhook section.
pub async fn redeliver(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, form: _ }: Posted<RedeliverForm>,
) -> Result<Response, ConsoleError> {
    session.require_operator()?;
    let t = session.tenant(&state, &tenant).await?;
    ops::webhooks::redeliver(
        state.store.as_ref(),
        state.clock.now(),
        &session.actor(),
        &id,
        Some(&t.id),
        None,
    )
    .await?;
    Ok(redirect(&format!(
        "{}?done=redelivered#h-webhooks",
        tenant_href(&t.id)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_store::HourCount;

    #[test]
    fn scale_tops_are_nice() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(200), 200);
        assert_eq!(nice_ceiling(201), 500);
    }

    #[test]
    fn the_chart_sums_and_scales_its_hours() {
        let start = OffsetDateTime::from_unix_timestamp(1_764_806_400).unwrap(); // a midnight
        let hours: Vec<HourCount> = (0..HOURS)
            .map(|i| HourCount {
                hour: start + Duration::hours(i),
                requests: if i == 30 { 100 } else { 2 },
                failures: u64::from(i == 30),
                unauthorized: 0,
                server_errors: 0,
            })
            .collect();
        let c = Chart::of(&hours);
        assert_eq!(c.summary, "434 requests, 1 failed, in the last 7 days.");
        assert_eq!(c.bars.len(), 168);
        assert_eq!(c.bars[30].req_h, PLOT_H, "the busiest hour fills the scale");
        assert_eq!(c.bars[30].fail_h, 1, "one failure is still visible");
        assert_eq!(c.days.len(), 7);
        assert_eq!(c.rows.len(), 7);
        assert_eq!(c.rows[1].requests, "146");
        assert!(c.desc.contains("100 requests (1 failed)"), "{}", c.desc);
    }
}
